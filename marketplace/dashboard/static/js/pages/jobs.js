// /jobs: every job, newest first, live; filtered by status, requester or provider from the query.

import { h, replace } from "../dom.js";
import { shortAddress } from "../format.js";
import { JobTable } from "../components/job-table.js";
import { address } from "../widgets.js";

export const section = "jobs";
const STATUSES = ["open", "running", "revealing", "completed", "failed", "cancelled"];

export async function render({ main, query, signal, router, setTitle }) {
  const filters = {
    status: STATUSES.includes(query.get("status")) ? query.get("status") : null,
    requester: query.get("requester"),
    provider: query.get("provider"),
  };
  const who = filters.requester ? ["posted by ", address(filters.requester, { href: false })]
    : filters.provider ? ["claimed by ", address(filters.provider)] : [];
  setTitle(filters.requester ? `Jobs of ${shortAddress(filters.requester)}` : "Jobs");
  const select = h("select", { id: "status-filter", name: "status" },
    h("option", { value: "" }, "Any status"),
    STATUSES.map((status) => h("option", { value: status, selected: status === filters.status }, status)));
  select.addEventListener("change", () => {
    const next = new URLSearchParams(query);
    if (select.value) next.set("status", select.value);
    else next.delete("status");
    router.navigate(`/jobs${next.size ? `?${next}` : ""}`, { replaceState: true });
  });
  const jobs = new JobTable({ filters, limit: 25, signal, caption: "Jobs, newest first; updated live" });
  replace(main,
    h("h1", {}, "Jobs"),
    who.length ? h("p", {}, "Jobs ", who, ". ", h("a", { href: "/jobs" }, "Show all jobs"), ".") : null,
    h("div", { class: "toolbar" }, h("label", { for: "status-filter" }, "Status", select)),
    jobs.element);
  await jobs.load();
}
