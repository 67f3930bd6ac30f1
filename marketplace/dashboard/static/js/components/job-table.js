// A table of jobs that follows the event stream: a posted job appears at the top and a changed job
// is read again and updated in place, without reloading the page.

import { getJson } from "../api.js";
import { listen } from "../bus.js";
import { h, reconcile, replace, row, table } from "../dom.js";
import { address, amount, badge, jobLink, time } from "../widgets.js";
import { coalesce, errorAlert, wasAborted } from "../common.js";

const REFETCH_PAGE_ABOVE = 20; // more changed jobs than this at once: read the first page again

function jobRow(job) {
  return row([
    jobLink(job.id),
    badge(job.status),
    address(job.requester, { href: `/jobs?requester=${job.requester}` }),
    { value: amount(job.reward_per_replica, job.token), num: true },
    { value: `${job.claims}/${job.replicas}`, num: true },
    time(job.posted_at),
  ], { "data-job-id": job.id, "data-status": job.status });
}

export class JobTable {
  /** `filters`: {status, requester, provider, token}; `limit`: rows per page; `paged`: a "more" button. */
  constructor({ filters = {}, limit = 25, paged = true, caption = "Jobs, newest first", signal }) {
    this.filters = filters;
    this.limit = limit;
    this.paged = paged;
    this.signal = signal;
    this.jobs = new Map(); // id -> job, as shown
    this.rows = new Map(); // id -> {shown: the job's JSON, element}: unchanged rows are kept, not redrawn
    this.cursor = null;
    this.dirty = new Set();
    const { wrap, body } = table({
      caption,
      label: caption,
      columns: [
        { title: "Job" }, { title: "Status" }, { title: "Requester" }, { title: "Reward per replica", num: true },
        { title: "Claimed / replicas", num: true }, { title: "Posted" },
      ],
      rows: [],
    });
    this.body = body;
    this.message = h("div", { "aria-live": "polite" });
    this.moreButton = h("button", { type: "button", class: "more", hidden: true, on: { click: () => this.more() } }, "Show older jobs");
    this.element = h("div", { class: "job-table" }, this.message, wrap, this.moreButton);
    this.flush = coalesce(() => this.refreshDirty(), 150);
    listen("market-event", (event) => this.onEvent(event.detail), signal);
    listen("reorg", () => this.load(), signal);
    listen("resync", () => this.load(), signal);
  }

  matches(job) {
    const { status, requester, provider, token } = this.filters;
    if (status && job.status !== status) return false;
    if (requester && job.requester.toLowerCase() !== requester.toLowerCase()) return false;
    if (token && job.token.toLowerCase() !== token.toLowerCase()) return false;
    if (provider && !job.assignments.some((a) => a.provider.toLowerCase() === provider.toLowerCase())) return false;
    return true;
  }

  async load() {
    try {
      const page = await getJson("/v1/jobs", { params: { ...this.filters, limit: this.limit }, signal: this.signal });
      this.jobs = new Map(page.jobs.map((job) => [job.id, job]));
      this.cursor = page.next_cursor;
      this.render();
      this.message.replaceChildren();
    } catch (error) {
      if (wasAborted(error, this.signal)) return;
      replace(this.message, errorAlert(error, "the jobs")); // the rows already shown stay
    }
  }

  async more() {
    if (!this.cursor) return;
    try {
      const page = await getJson("/v1/jobs", { params: { ...this.filters, limit: this.limit, cursor: this.cursor }, signal: this.signal });
      for (const job of page.jobs) this.jobs.set(job.id, job);
      this.cursor = page.next_cursor;
      this.render();
    } catch (error) {
      if (!wasAborted(error, this.signal)) replace(this.message, errorAlert(error, "older jobs"));
    }
  }

  onEvent(event) {
    if (event.job_id === null || event.job_id === undefined) return;
    this.dirty.add(event.job_id);
    this.flush();
  }

  async refreshDirty() {
    const ids = [...this.dirty];
    this.dirty.clear();
    // With more pages, a job older than the oldest shown belongs to a later page; any other may be
    // new, shown, or newly matching the filters.
    const oldest = this.jobs.size ? Math.min(...this.jobs.keys()) : 0;
    const wanted = ids.filter((id) => this.jobs.has(id) || !this.cursor || id > oldest);
    if (wanted.length === 0) return;
    if (wanted.length > REFETCH_PAGE_ABOVE) {
      await this.load();
      return;
    }
    const changed = [];
    await Promise.all(wanted.map(async (id) => {
      try {
        const job = await getJson(`/v1/jobs/${id}`, { signal: this.signal });
        if (this.jobs.has(id) || this.matches(job)) {
          this.jobs.set(id, job);
          changed.push(id);
        }
      } catch (error) {
        if (!wasAborted(error, this.signal)) this.dirty.add(id); // retried with the next event or resync
      }
    }));
    if (changed.length) this.render(new Set(changed));
  }

  render(flash = new Set()) {
    let jobs = [...this.jobs.values()].sort((a, b) => b.id - a.id);
    if (!this.paged && jobs.length > this.limit) {
      // A fixed-size table (the overview's latest jobs) keeps only the newest.
      for (const job of jobs.slice(this.limit)) this.jobs.delete(job.id);
      jobs = jobs.slice(0, this.limit);
    }
    if (jobs.length === 0) {
      this.rows.clear();
      replace(this.body, h("tr", {}, h("td", { colspan: "6", class: "muted" }, "No jobs match.")));
    } else {
      const rows = new Map();
      for (const job of jobs) {
        const shown = JSON.stringify(job);
        const kept = this.rows.get(job.id);
        if (kept && kept.shown === shown) {
          rows.set(job.id, kept);
          continue;
        }
        const element = jobRow(job);
        if (flash.has(job.id)) element.classList.add("flash");
        rows.set(job.id, { shown, element });
      }
      this.rows = rows;
      reconcile(this.body, [...rows.values()].map((kept) => kept.element));
    }
    this.moreButton.hidden = !this.paged || !this.cursor;
  }
}
