// The dashboard's entry point: the page router, the live event stream and the status banner.

import { startLive } from "./live.js";
import { Router } from "./router.js";
import { startStatus } from "./status.js";
import { refreshTimes } from "./widgets.js";
import * as job from "./pages/job.js";
import * as jobs from "./pages/jobs.js";
import * as notFound from "./pages/not-found.js";
import * as overview from "./pages/overview.js";
import * as provider from "./pages/provider.js";
import * as providers from "./pages/providers.js";
import * as search from "./pages/search.js";

const routes = [
  [/^\/$/, overview],
  [/^\/jobs\/?$/, jobs],
  [/^\/jobs\/([0-9]{1,19})$/, job],
  [/^\/providers\/?$/, providers],
  [/^\/providers\/(0x[0-9a-fA-F]{40})$/, provider],
  [/^\/search\/?$/, search],
];

const main = document.getElementById("main");
const router = new Router(routes, { main, notFound });

// Focus, not just scroll: the next Tab then continues inside the content.
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

document.querySelector(".search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = event.target.elements.q.value.trim();
  if (query) router.navigate(`/search?q=${encodeURIComponent(query)}`);
});

startLive();
startStatus({
  banner: document.getElementById("banner"),
  footer: document.getElementById("index-status"),
  live: document.getElementById("live-status"),
});
router.start();
setInterval(() => refreshTimes(), 5000);
