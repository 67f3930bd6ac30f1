// /jobs/:id — one job: its terms, its spec, inputs and result (digests, downloads), each replica's
// commit and reveal with its outcome and gas, and the timeline of its events. Follows the stream.

import { ApiError, getJson } from "../api.js";
import { listen } from "../bus.js";
import { h, replace, row, table } from "../dom.js";
import { formatBytes, formatCount } from "../format.js";
import { eventArgs } from "../components/event-args.js";
import { address, amount, badge, digest, stake, time } from "../widgets.js";
import { coalesce, errorAlert, section as titled, wasAborted } from "../common.js";

export const section = "jobs";


const PROVIDER_STEPS = { JobClaimed: "claim", ResultCommitted: "commit", ResultRevealed: "reveal" };

function fact(term, ...value) {
  return [h("dt", {}, term), h("dd", {}, value)];
}

function block(number, tx) {
  return number === null || number === undefined ? "—" : [`block ${formatCount(number)}`, tx ? [" · tx ", digest(tx, { what: "transaction hash" })] : null];
}

/** Gas of the job's transactions, each counted once; null when the index has no gas figures. */
function totalGas(job) {
  const byTx = new Map();
  for (const event of job.timeline) {
    if (event.gas_used !== null && event.gas_used !== undefined) byTx.set(event.tx_hash, event.gas_used);
  }
  return byTx.size ? [...byTx.values()].reduce((a, b) => a + b, 0) : null;
}

function facts(job) {
  const gas = totalGas(job);
  const escrow = (BigInt(job.reward_per_replica) * BigInt(job.replicas)).toString();
  return h("dl", { class: "facts" },
    fact("Status", badge(job.status)),
    fact("Requester", address(job.requester, { href: `/jobs?requester=${job.requester}` })),
    fact("Payment", job.token === "0x0000000000000000000000000000000000000000" ? "ETH" : ["token ", address(job.token, { href: false })]),
    fact("Reward per replica", amount(job.reward_per_replica, job.token)),
    fact("Escrow", amount(escrow, job.token)),
    fact("Collateral per replica", stake(job.collateral_per_replica)),
    fact("Replicas", `${job.replicas} (${job.claims} claimed, ${job.commits} committed, ${job.reveals} revealed)`),
    fact("Spec hash", digest(job.spec_hash, { what: "spec hash" })),
    fact("Result hash", job.result_hash ? digest(job.result_hash, { what: "result hash" }) : h("span", { class: "muted" }, job.status === "failed" ? "none: no quorum" : "not settled")),
    fact("Posted", time(job.posted_at), " · ", block(job.posted_block, job.posted_tx)),
    fact("Claim deadline", time(job.claim_deadline)),
    fact("Draw seed", job.seed === null ? h("span", { class: "muted" }, "not indexed")
      : [h("span", { class: "mono" }, String(job.seed)), h("small", { class: "muted" }, " seats go by stake-weighted sortition: each provider's ticket comes from this seed")]),
    fact("Started", time(job.started_at), job.started_block ? [" · ", block(job.started_block)] : null),
    fact("Commit deadline", time(job.commit_deadline)),
    fact("Finished", time(job.finished_at), job.finished_block ? [" · ", block(job.finished_block)] : null),
    fact("Gas", gas === null ? h("span", { class: "muted" }, "not indexed")
      : [formatCount(gas), h("small", { class: "muted" }, " in its transactions; a batch transaction counts whole")]));
}

function dataTable(data) {
  const rows = data.items.map((item) => row([
    item.role,
    digest(item.digest, { what: `${item.role} digest` }),
    h("span", { class: "mono", title: item.cid }, `${item.cid.slice(0, 12)}…${item.cid.slice(-6)}`),
    { value: formatBytes(item.size), num: true },
    item.stored ? h("a", { href: item.url, download: `${item.role}-${item.digest.slice(0, 12)}` }, "Download", h("span", { class: "visually-hidden" }, ` ${item.role} ${item.digest}`))
      : h("span", { class: "muted" }, "not stored here"),
  ], { "data-role": item.role }));
  return table({
    caption: "Spec, inputs and result by SHA-256 digest (CIDv1 to pin them on IPFS)",
    columns: [{ title: "Role" }, { title: "Digest" }, { title: "CID" }, { title: "Size", num: true }, { title: "Download" }],
    rows,
  }).wrap;
}

function gasOf(events) {
  const known = events.filter((event) => event.gas_used !== null && event.gas_used !== undefined);
  if (!known.length) return h("span", { class: "muted", title: "The index has no gas figures for these transactions" }, "—");
  return known.map((event, i) => [i ? h("br") : null, `${PROVIDER_STEPS[event.name]} ${formatCount(event.gas_used)}`]);
}

// A draw ticket as a fraction of its 64-bit range: the lower (per unit of stake), the sooner the
// provider was eligible. The exact value is in the title.
function ticket(value) {
  if (!value) return { value: h("span", { class: "muted" }, "—"), num: true };
  const fraction = Number(BigInt(value) * 10000n / (1n << 64n)) / 10000;
  return { value: h("span", { class: "mono", title: `ticket ${value}` }, fraction.toFixed(4)), num: true };
}

function assignmentTable(job) {
  const steps = (provider) => job.timeline.filter((event) => PROVIDER_STEPS[event.name] && event.args.provider === provider);
  const rows = job.assignments.map((a) => {
    const matches = a.result_hash && job.result_hash ? (a.result_hash === job.result_hash ? " (the result)" : " (differs)") : "";
    return row([
      { value: a.slot, num: true },
      address(a.provider),
      ticket(a.ticket),
      a.status,
      a.commitment ? [digest(a.commitment, { what: "commitment" }), h("br"), h("small", { class: "muted" }, block(a.committed_block))] : h("span", { class: "muted" }, "not committed"),
      a.result_hash ? [digest(a.result_hash, { what: "revealed result hash" }), matches, h("br"), h("small", { class: "muted" }, block(a.revealed_block))] : h("span", { class: "muted" }, "not revealed"),
      badge(a.outcome),
      { value: a.slashed_amount === "0" ? "—" : stake(a.slashed_amount), num: true },
      gasOf(steps(a.provider)),
    ], { "data-provider": a.provider, "data-outcome": a.outcome ?? "" });
  });
  return table({
    caption: "Replica slots: claim, commit–reveal and outcome",
    columns: [
      { title: "Slot", num: true }, { title: "Provider" }, { title: "Ticket", num: true }, { title: "Status" }, { title: "Commitment" },
      { title: "Revealed result" }, { title: "Outcome" }, { title: "Slashed", num: true }, { title: "Gas" },
    ],
    rows: rows.length ? rows : [h("tr", {}, h("td", { colspan: "9", class: "muted" }, "No provider has claimed a slot."))],
  }).wrap;
}

function timeline(job) {
  return h("ol", { class: "timeline" }, job.timeline.map((event) => h("li", { "data-event": event.name },
    h("span", { class: "event-name" }, event.name), " ",
    h("span", { class: "event-meta" }, time(event.block_timestamp), " · ", block(event.block_number, event.tx_hash),
      event.gas_used !== null && event.gas_used !== undefined ? ` · gas ${formatCount(event.gas_used)} (whole transaction)` : null),
    h("div", {}, eventArgs(event, job.token)))));
}

function specView(data) {
  if (data.spec) return h("pre", { tabindex: "0", "aria-label": "The job spec (JSON)" }, h("code", {}, JSON.stringify(data.spec, null, 2)));
  return h("p", { class: "muted" }, `Not shown: ${data.spec_note ?? "unknown"}.`);
}

export async function render({ main, params, signal, setTitle }) {
  const id = Number(params[0]);
  setTitle(`Job #${id}`);
  const heading = h("h1", {}, `Job #${id} `);
  const message = h("div", {});
  const body = h("div", {});
  replace(main, heading, message, body);
  let shown = null; // the JSON of what the page shows: a refresh that reads the same draws nothing

  async function load() {
    try {
      const [job, data] = await Promise.all([
        getJson(`/v1/jobs/${id}`, { signal }),
        getJson(`/v1/insights/jobs/${id}/data`, { signal }),
      ]);
      const read = JSON.stringify([job, data]);
      message.replaceChildren();
      if (read === shown) return; // redrawing would only take the focus and the scroll position away
      shown = read;
      replace(heading, `Job #${id} `, badge(job.status));
      replace(body,
        facts(job),
        titled("Spec, inputs and result", dataTable(data)),
        titled("Spec", specView(data)),
        titled("Assignments", assignmentTable(job)),
        titled("Timeline", timeline(job)));
    } catch (error) {
      if (wasAborted(error, signal)) return;
      if (error instanceof ApiError && error.status === 404 && shown === null) {
        replace(message, h("p", { class: "alert" }, `There is no job #${id} in this index. If it was just posted, the indexer may not have reached it yet; this page updates when it does.`));
      } else {
        replace(message, errorAlert(error, `job #${id}`)); // what was shown stays
      }
    }
  }

  const refresh = coalesce(load, 200);
  listen("market-event", (event) => {
    if (event.detail.job_id === id) refresh();
  }, signal);
  listen("reorg", refresh, signal);
  listen("resync", refresh, signal);
  await load();
  return () => refresh.cancel();
}
