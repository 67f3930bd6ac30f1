// /providers/:address — one provider: stake, locked collateral, earnings, completed and slashed
// jobs, reputation and earnings over time, its slashes and latest assignments. Follows the stream.

import { ApiError, getJson } from "../api.js";
import { listen } from "../bus.js";
import { Chart } from "../charts.js";
import { h, replace, row, table } from "../dom.js";
import { formatCount, shortAddress, unitOf, unitsAsNumber, formatUnits } from "../format.js";
import { address, amount, badge, copyButton, digest, jobLink, stake, time } from "../widgets.js";
import { coalesce, errorAlert, section as titled, wasAborted } from "../common.js";

export const section = "providers";
const BUCKETS = 30;

function card(term, ...value) {
  return h("div", { class: "card" }, h("dt", {}, term), h("dd", {}, value));
}

function figures(provider) {
  const earned = Object.entries(provider.earned);
  return h("dl", { class: "cards" },
    card("Free stake", stake(provider.staked)),
    card("Locked as collateral", stake(provider.locked)),
    card("Unbonding", stake(provider.unbonding)),
    card("Earned", earned.length ? earned.map(([token, value], i) => [i ? h("br") : null, amount(value, token)]) : "nothing yet"),
    card("Jobs claimed", formatCount(provider.jobs_claimed)),
    card("Completed", h("span", { "data-figure": "completed" }, formatCount(provider.jobs_completed))),
    card("Slashed", h("span", { "data-figure": "slashed" }, formatCount(provider.jobs_slashed)), h("small", {}, stake(provider.slashed_amount), " taken")));
}

function slashTable(provider) {
  const rows = provider.slashes.map((slash) => row([
    jobLink(slash.job_id), { value: stake(slash.amount), num: true }, time(slash.block_timestamp),
    digest(slash.tx_hash, { what: "transaction hash" }),
  ], { "data-job-id": slash.job_id }));
  return table({
    caption: "Collateral taken for wrong or missing results",
    columns: [{ title: "Job" }, { title: "Amount", num: true }, { title: "When" }, { title: "Transaction" }],
    rows: rows.length ? rows : [h("tr", {}, h("td", { colspan: "4", class: "muted" }, "Never slashed."))],
  }).wrap;
}

function recentTable(history) {
  const rows = history.recent.map((item) => row([
    jobLink(item.job_id), badge(item.status), badge(item.outcome),
    { value: item.slashed_amount === "0" ? "—" : stake(item.slashed_amount), num: true }, time(item.finished_at),
  ]));
  return table({
    caption: "Latest assignments, newest first",
    columns: [{ title: "Job" }, { title: "Job status" }, { title: "Outcome" }, { title: "Slashed", num: true }, { title: "Settled" }],
    rows: rows.length ? rows : [h("tr", {}, h("td", { colspan: "5", class: "muted" }, "No assignment yet."))],
  }).wrap;
}

export async function render({ main, params, signal, setTitle }) {
  const wanted = params[0];
  setTitle(`Provider ${shortAddress(wanted)}`);
  const heading = h("h1", {}, "Provider ", h("span", { class: "mono" }, shortAddress(wanted)));
  const subtitle = h("p", {}, h("span", { class: "mono" }, wanted), " ", copyButton(wanted, "address"));
  const message = h("div", {});
  const cards = h("div", {});
  const slashes = h("div", {});
  const recent = h("div", {});
  const reputation = new Chart({
    title: "Reputation: share of settled jobs won",
    series: [{ label: "Won / (won + slashed)", kind: "line", format: (v) => `${Math.round(v * 100)}%` }],
    yRange: [0, 1],
    yFormat: (v) => `${Math.round(v * 100)}%`,
    summarize: (xs, [values]) => {
      const last = values.filter((v) => v !== null).at(-1);
      return last === undefined ? "Nothing settled yet." : `Now ${Math.round(last * 100)}%.`;
    },
  });
  const outcomes = new Chart({
    title: "Settled assignments per bucket",
    series: [
      { label: "Won", kind: "bars", color: "--series-2" }, { label: "Slashed", kind: "bars", color: "--series-3" },
      { label: "Returned (no quorum)", kind: "line", color: "--series-5" },
    ],
    summarize: (xs, ys) => `${ys[0].reduce((a, b) => a + b, 0)} won, ${ys[1].reduce((a, b) => a + b, 0)} slashed, ${ys[2].reduce((a, b) => a + b, 0)} returned.`,
  });
  let earnings = null;
  const earningsSlot = h("div", {});
  const charts = h("div", { class: "charts" }, reputation.element, earningsSlot, outcomes.element);
  replace(main, heading, subtitle, message, cards,
    titled("Over time", charts),
    titled("Slashes", slashes),
    titled("Latest assignments", recent, h("p", {}, h("a", { href: `/jobs?provider=${wanted}` }, "All jobs of this provider"))));

  function drawEarnings(history) {
    const tokens = Object.keys(history.earned);
    const key = tokens.join(",");
    if (!earnings || earnings.key !== key) {
      earnings?.chart.destroy();
      const chart = new Chart({
        title: "Earnings over time (cumulative)",
        series: (tokens.length ? tokens : ["0x0000000000000000000000000000000000000000"]).map((token) => ({
          label: token === "0x0000000000000000000000000000000000000000" ? "ETH" : `tokens ${shortAddress(token)}`,
          kind: "line",
          format: (v) => `${v.toLocaleString("en", { maximumFractionDigits: 6 })} ${unitOf(token)}`,
        })),
        yFormat: (v) => v.toLocaleString("en", { maximumFractionDigits: 4 }),
        summarize: () => tokens.map((token) => `${formatUnits(history.earned[token].at(-1))} ${unitOf(token)}`).join(", ") + " earned.",
      });
      earnings = { key, chart };
      replace(earningsSlot, chart.element);
    }
    earnings.chart.update(history.times, tokens.length ? tokens.map((token) => history.earned[token].map((value) => unitsAsNumber(value))) : [history.times.map(() => 0)]);
  }

  let shown = null; // the JSON of what the page shows: a refresh that reads the same draws nothing
  async function load() {
    try {
      const [provider, history] = await Promise.all([
        getJson(`/v1/providers/${wanted}`, { signal }),
        getJson(`/v1/insights/providers/${wanted}`, { params: { buckets: BUCKETS }, signal }),
      ]);
      const read = JSON.stringify([provider, history]);
      message.replaceChildren();
      if (read === shown) return; // redrawing would only take the focus and the scroll position away
      shown = read;
      replace(heading, "Provider ", h("span", { class: "mono", title: provider.address }, shortAddress(provider.address)));
      replace(subtitle, address(provider.address, { href: false }),
        provider.metadata_uri ? [" · metadata ", h("span", { class: "mono" }, provider.metadata_uri)] : null);
      replace(cards, figures(provider));
      replace(slashes, slashTable(provider));
      replace(recent, recentTable(history));
      outcomes.options.step = history.bucket_seconds ?? 60;
      reputation.update(history.times, [history.reputation]);
      outcomes.update(history.times, [history.won, history.slashed, history.returned]);
      drawEarnings(history);
    } catch (error) {
      if (wasAborted(error, signal)) return;
      if (error instanceof ApiError && error.status === 404 && shown === null) {
        replace(message, h("p", { class: "alert" }, "This address has not registered as a provider in this market (or the indexer has not reached its registration yet)."));
      } else {
        replace(message, errorAlert(error, "this provider"));
      }
    }
  }

  const refresh = coalesce(load, 500);
  const mine = wanted.toLowerCase();
  listen("market-event", (event) => {
    const args = event.detail.args ?? {};
    if (String(args.provider ?? "").toLowerCase() === mine || String(args.account ?? "").toLowerCase() === mine) refresh();
  }, signal);
  listen("reorg", refresh, signal);
  listen("resync", refresh, signal);
  await load();
  return () => {
    refresh.cancel();
    for (const chart of [reputation, outcomes, earnings?.chart]) chart?.destroy();
  };
}
