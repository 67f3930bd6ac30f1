// /: the market at a glance — jobs by status, volume, completion time, providers, stake, slashes,
// charts of activity and latency, and the latest jobs, all following the event stream.

import { getJson } from "../api.js";
import { listen } from "../bus.js";
import { Chart } from "../charts.js";
import { h, replace } from "../dom.js";
import { formatCount, formatDuration } from "../format.js";
import { JobTable } from "../components/job-table.js";
import { amount, badge, stake } from "../widgets.js";
import { coalesce, errorAlert, section as titled, wasAborted } from "../common.js";

export const section = "overview";


const STATUSES = ["open", "running", "revealing", "completed", "failed", "cancelled"];
const BUCKET_SECONDS = 60;
const BUCKETS = 60;
const REFRESH_MS = 15000; // chain time moves on even without events: the windows slide

function card(term, ...value) {
  return h("div", { class: "card" }, h("dt", {}, term), h("dd", {}, value));
}

function statusCounts(stats) {
  return h("ul", { class: "status-counts", "aria-label": "Jobs by status" }, STATUSES.map((status) =>
    h("li", { "data-status": status }, badge(status), h("span", { class: "count" }, formatCount(stats.jobs_by_status[status] ?? 0)))));
}

function figures(stats, summary) {
  const volume = Object.entries(stats.volume);
  return h("dl", { class: "cards" },
    card("Jobs", h("span", { "data-figure": "jobs-total" }, formatCount(stats.jobs_total))),
    card("Volume", volume.length ? volume.map(([token, value], i) => [i ? h("br") : null, amount(value, token)]) : "—"),
    card("Median time to completion", formatDuration(stats.median_completion_seconds)),
    card("Active providers", h("span", { "data-figure": "providers-active" }, formatCount(summary.providers_active)),
      h("small", {}, `with stake, of ${formatCount(stats.providers)} registered`)),
    card("Total staked", stake(stats.total_staked)),
    card("Slashes", h("span", { "data-figure": "slashes" }, formatCount(summary.slashes)), h("small", {}, stake(summary.slashed_amount), " taken")),
    card("Requesters", formatCount(summary.requesters)));
}

const sum = (values) => values.reduce((total, value) => total + value, 0);

export async function render({ main, signal, setTitle }) {
  setTitle("Overview");
  const counts = h("div", {});
  const cards = h("div", {});
  const message = h("div", {});
  const perMinute = new Chart({
    title: "Jobs per minute (last hour, chain time)",
    series: [{ label: "Posted", kind: "bars", color: "--series-1" }, { label: "Settled", kind: "bars", color: "--series-2" }],
    step: BUCKET_SECONDS,
    summarize: (xs, [posted, settled]) => `${sum(posted)} jobs posted and ${sum(settled)} settled in the last hour.`,
  });
  const byStatus = new Chart({
    title: "Jobs by status over time",
    series: [
      { label: "Open", kind: "line", color: "--series-1" }, { label: "Running or revealing", kind: "line", color: "--series-4" },
      { label: "Completed", kind: "line", color: "--series-2" }, { label: "Failed", kind: "line", color: "--series-3" },
      { label: "Cancelled", kind: "line", color: "--series-5" },
    ],
    step: BUCKET_SECONDS,
    summarize: (xs, ys) => `At the end: ${ys.map((values, i) => `${values.at(-1)} ${["open", "running or revealing", "completed", "failed", "cancelled"][i]}`).join(", ")}.`,
  });
  const latency = new Chart({
    title: "Time to completion of completed jobs",
    x: "seconds",
    series: [{ label: "Jobs", kind: "bars" }],
    xFormat: (seconds) => formatDuration(seconds),
    summarize: (xs, [counts_]) => `${sum(counts_)} completed jobs, from ${formatDuration(xs[0])} to ${formatDuration(xs.at(-1) + latency.options.step)}.`,
  });
  const latest = new JobTable({ limit: 10, paged: false, signal, caption: "The latest jobs; updated live" });
  replace(main,
    h("h1", {}, "Market overview"),
    message,
    titled("Jobs by status", counts),
    titled("Market", cards),
    titled("Activity", h("div", { class: "charts" }, perMinute.element, byStatus.element, latency.element)),
    titled("Latest jobs", latest.element, h("p", {}, h("a", { href: "/jobs" }, "All jobs"))));

  async function load() {
    try {
      const [stats, summary, activity, distribution] = await Promise.all([
        getJson("/v1/stats", { signal }),
        getJson("/v1/insights/summary", { signal }),
        getJson("/v1/insights/activity", { params: { bucket: BUCKET_SECONDS, buckets: BUCKETS }, signal }),
        getJson("/v1/insights/latency", { params: { bins: 24 }, signal }),
      ]);
      replace(counts, statusCounts(stats));
      replace(cards, figures(stats, summary));
      const settled = activity.completed.map((value, i) => value + activity.failed[i] + activity.cancelled[i]);
      perMinute.update(activity.times, [activity.posted, settled]);
      byStatus.update(activity.times, [activity.open_jobs, activity.in_progress, activity.completed_total, activity.failed_total, activity.cancelled_total]);
      latency.options.step = distribution.bin_seconds ?? 1;
      latency.update(distribution.bins.map((bin) => bin.start), [distribution.bins.map((bin) => bin.count)]);
      message.replaceChildren();
    } catch (error) {
      if (!wasAborted(error, signal)) replace(message, errorAlert(error, "the market figures")); // last figures stay
    }
  }

  const refresh = coalesce(load, 1000);
  listen("market-event", refresh, signal);
  listen("reorg", refresh, signal);
  listen("resync", refresh, signal);
  const timer = setInterval(refresh, REFRESH_MS);
  await Promise.all([load(), latest.load()]);
  return () => {
    clearInterval(timer);
    refresh.cancel();
    for (const chart of [perMinute, byStatus, latency]) chart.destroy();
  };
}
