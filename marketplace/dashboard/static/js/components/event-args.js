// An event's arguments in readable form: addresses link, hashes shorten, amounts are in units.

import { h } from "../dom.js";
import { ZERO_ADDRESS, formatCount } from "../format.js";
import { address, amount, digest, stake, time } from "../widgets.js";

const OUTCOMES = ["none", "open", "running", "revealing", "completed", "failed", "cancelled"];
const AMOUNTS = new Set(["amount", "rewardPerReplica", "collateralPerReplica"]);
const TIMES = new Set(["claimDeadline", "commitDeadline", "readyAt"]);
const STAKE_EVENTS = new Set(["Slashed", "Staked", "UnstakeRequested", "StakeWithdrawn"]);

function value(event, name, raw, token) {
  if (name === "outcome" && typeof raw === "number") return OUTCOMES[raw] ?? String(raw);
  if (TIMES.has(name) && typeof raw === "number") return time(raw);
  if (AMOUNTS.has(name) && typeof raw === "string") {
    if (STAKE_EVENTS.has(event.name) || name === "collateralPerReplica") return stake(raw);
    return amount(raw, event.args.token ?? token);
  }
  if (Array.isArray(raw)) return raw.length ? raw.map((item, i) => [i ? ", " : "", value(event, name, item, token)]) : "none";
  if (typeof raw === "string" && /^0x[0-9a-fA-F]{40}$/.test(raw)) {
    if (name === "token") return raw === ZERO_ADDRESS ? "ETH" : address(raw, { href: false });
    // Providers have a page; any other address (requester, treasury) is looked up by search.
    return address(raw, { href: name === "provider" || name === "winners" ? null : `/search?q=${raw}` });
  }
  if (typeof raw === "string" && /^0x[0-9a-fA-F]{64}$/.test(raw)) return digest(raw);
  if (typeof raw === "number") return formatCount(raw);
  return String(raw);
}

/** "provider 0x12…ab · amount 0.1 ETH": every argument but the job id (the page says it). */
export function eventArgs(event, token) {
  const parts = Object.entries(event.args).filter(([name]) => name !== "jobId");
  return h("span", { class: "event-args" }, parts.map(([name, raw], i) => [i ? " · " : "", h("span", { class: "muted" }, name), " ", value(event, name, raw, token)]));
}
