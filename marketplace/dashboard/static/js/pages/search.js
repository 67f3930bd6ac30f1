// /search?q= — finds what a job id, an address or a digest names; a job id goes straight to its job.

import { ApiError, getJson } from "../api.js";
import { h, replace } from "../dom.js";
import { formatCount } from "../format.js";
import { address, badge, digest, jobLink } from "../widgets.js";
import { errorAlert, wasAborted } from "../common.js";

export const section = null;

const MATCHES = {
  id: "job id",
  spec_hash: "its spec hash",
  result_hash: "its settled result hash",
  revealed_result: "a result a provider revealed for it",
  posted_tx: "the transaction that posted it",
};

function hit(item) {
  if (item.kind === "job") {
    return h("li", { "data-kind": "job", "data-job-id": item.job_id }, "Job ", jobLink(item.job_id), " ", badge(item.status), ` — matches ${MATCHES[item.match] ?? item.match}`);
  }
  if (item.kind === "provider") {
    return h("li", { "data-kind": "provider" }, "Provider ", address(item.address));
  }
  if (item.kind === "requester") {
    return h("li", { "data-kind": "requester" }, "Requester ", address(item.address, { href: `/jobs?requester=${item.address}` }),
      ` — posted ${formatCount(item.jobs)} job${item.jobs === 1 ? "" : "s"}: `, h("a", { href: `/jobs?requester=${item.address}` }, "see them"));
  }
  return h("li", { "data-kind": "blob" }, "A blob this marketplace stores: ", digest(item.digest, { what: "digest" }), " ",
    h("a", { href: `/v1/blobs/${item.digest}`, download: item.digest }, "Download"));
}

export async function render({ main, query, signal, router, setTitle }) {
  const text = (query.get("q") ?? "").trim();
  setTitle(text ? `Search: ${text}` : "Search");
  const input = document.getElementById("search-input");
  if (input && document.activeElement !== input) input.value = text;
  const results = h("div", { "aria-live": "polite" });
  replace(main, h("h1", {}, "Search"), results);
  if (!text) {
    replace(results, h("p", {}, "Enter a job id (12 or #12), an address (0x and 40 hex digits), or a SHA-256 digest or CID of a spec or result in the search box."));
    return;
  }
  try {
    const found = await getJson("/v1/search", { params: { q: text }, signal });
    const jobs = found.hits.filter((item) => item.kind === "job");
    if (found.kind === "job_id" && jobs.length === 1) {
      router.navigate(`/jobs/${jobs[0].job_id}`, { replaceState: true });
      return;
    }
    if (found.hits.length === 0) {
      replace(results, h("p", { role: "status" }, `Nothing in this market matches “${text}”.`,
        found.kind === "job_id" ? " The job may not be indexed yet." : ""));
      return;
    }
    replace(results,
      h("p", { role: "status" }, `${found.hits.length} result${found.hits.length === 1 ? "" : "s"} for `, h("span", { class: "mono" }, text),
        found.truncated ? " (more jobs matched; the newest are shown)" : "", ":"),
      h("ul", { class: "hits" }, found.hits.map(hit)));
  } catch (error) {
    if (wasAborted(error, signal)) return;
    replace(results, error instanceof ApiError
      ? h("p", { class: "alert", role: "alert" }, error.message)
      : errorAlert(error, "the search results"));
  }
}
