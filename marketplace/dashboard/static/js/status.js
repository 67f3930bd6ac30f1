// Says when what is shown may be out of date: the service does not answer, the index is behind the
// chain, the indexer cannot reach the chain, or live updates are interrupted. The data already on
// the page stays; the banner says since when it is the last known state.

import { getJson, isReachable } from "./api.js";
import { bus } from "./bus.js";
import { observeBlockTime } from "./clock.js";
import { h, replace } from "./dom.js";
import { formatCount, shortAddress } from "./format.js";
import { streamState } from "./live.js";

const POLL_MS = 3000;
const STREAM_GRACE_MS = 3000; // a reconnect that takes less is not worth a banner

let health = null;
let lastAnswer = null; // wall-clock Date of the last answer from the service
let streamDownSince = null;

function conditions() {
  const found = [];
  if (!isReachable()) {
    const since = lastAnswer ? ` Showing what was loaded by ${lastAnswer.toLocaleTimeString()}.` : "";
    found.push({ level: "error", key: "unreachable", text: `Cannot reach the marketplace service; retrying.${since}` });
    return found; // nothing else can be known meanwhile
  }
  if (health?.status === "not-initialized") {
    found.push({ level: "warn", key: "not-initialized", text: "The indexer has not started on this market yet: nothing is indexed." });
  } else if (health?.status === "indexing") {
    const where = health.indexed_block === null
      ? "it has not indexed a block yet"
      : `block ${formatCount(health.indexed_block)} of ${formatCount(health.head_block)}, ${formatCount(health.lag_blocks)} blocks behind`;
    found.push({ level: "warn", key: "indexing", text: `The index is behind the chain (${where}): figures may be out of date.` });
  } else if (health?.status === "stalled") {
    const reason = health.indexer?.error ? `: ${health.indexer.error}` : "";
    const state = health.indexer?.state === "halted" ? "The indexer has stopped" : "The indexer cannot reach the chain";
    const at = health.indexed_block === null ? "" : ` Showing the market as of block ${formatCount(health.indexed_block)}.`;
    found.push({ level: "error", key: "stalled", text: `${state}${reason}.${at}` });
  }
  if (streamDownSince !== null && Date.now() - streamDownSince > STREAM_GRACE_MS) {
    found.push({ level: "warn", key: "stream", text: "Live updates are interrupted; reconnecting to the event stream." });
  }
  return found;
}

function render(banner, footer) {
  const found = conditions();
  if (found.length === 0) {
    banner.hidden = true;
    banner.replaceChildren();
  } else {
    banner.hidden = false;
    banner.dataset.level = found.some((item) => item.level === "error") ? "error" : "warn";
    banner.dataset.conditions = found.map((item) => item.key).join(" ");
    replace(banner, found.length === 1 ? found[0].text : h("ul", {}, found.map((item) => h("li", {}, item.text))));
  }
  if (health && health.status !== "not-initialized") {
    const market = health.market ? ` · market ${shortAddress(health.market)}` : "";
    footer.textContent = `Indexed block ${formatCount(health.indexed_block)} of ${formatCount(health.head_block)} · chain ${health.chain_id}${market}`;
  }
}

async function poll(banner, footer) {
  try {
    health = await getJson("/health", { timeout: 5000 });
    lastAnswer = new Date();
    observeBlockTime(health.last_block_timestamp);
  } catch {
    // isReachable() now says false; the banner shows it
  }
  render(banner, footer);
}

export function startStatus({ banner, footer, live }) {
  const update = () => render(banner, footer);
  bus.addEventListener("reachability", (event) => {
    if (event.detail.reachable) {
      lastAnswer = new Date();
      if (event.detail.previous === false) {
        bus.dispatchEvent(new Event("resync")); // back: read again what was missed
        poll(banner, footer);
      }
    }
    update();
  });
  bus.addEventListener("stream-state", (event) => {
    streamDownSince = event.detail === "open" ? null : (streamDownSince ?? Date.now());
    live.dataset.state = event.detail;
    live.textContent = event.detail === "open" ? "Live updates: on" : `Live updates: ${event.detail === "down" ? "off, retrying" : "connecting"}`;
    update();
    if (event.detail !== "open") {
      poll(banner, footer); // a dropped stream is often the service going away: find out now
      setTimeout(update, STREAM_GRACE_MS + 100);
    }
  });
  streamDownSince = streamState() === "open" ? null : Date.now();
  const loop = async () => {
    await poll(banner, footer);
    setTimeout(loop, POLL_MS);
  };
  loop();
}
