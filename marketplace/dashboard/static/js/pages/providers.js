// /providers: every provider with its stake, work and slashes.

import { getJson } from "../api.js";
import { listen } from "../bus.js";
import { h, replace, row, table } from "../dom.js";
import { formatCount } from "../format.js";
import { address, amount, stake } from "../widgets.js";
import { coalesce, errorAlert, wasAborted } from "../common.js";

export const section = "providers";

function providerRow(provider) {
  const earned = Object.entries(provider.earned);
  return row([
    address(provider.address),
    { value: stake(provider.staked), num: true },
    { value: stake(provider.locked), num: true },
    { value: formatCount(provider.jobs_completed), num: true },
    { value: formatCount(provider.jobs_slashed), num: true },
    { value: stake(provider.slashed_amount), num: true },
    earned.length ? h("span", {}, earned.map(([token, value], i) => [i ? ", " : "", amount(value, token)])) : "—",
  ], { "data-address": provider.address });
}

export async function render({ main, signal, setTitle }) {
  setTitle("Providers");
  const { wrap, body } = table({
    caption: "Providers by address",
    columns: [
      { title: "Provider" }, { title: "Free stake", num: true }, { title: "Locked", num: true },
      { title: "Completed", num: true }, { title: "Slashed", num: true }, { title: "Slashed amount", num: true },
      { title: "Earned" },
    ],
    rows: [],
  });
  const message = h("div", {});
  const more = h("button", { type: "button", class: "more", hidden: true }, "Show more providers");
  replace(main, h("h1", {}, "Providers"), message, wrap, more);
  let providers = [];
  let cursor = null;

  async function load(next = null) {
    try {
      const page = await getJson("/v1/providers", { params: { limit: 100, cursor: next }, signal });
      providers = next ? [...providers, ...page.providers] : page.providers;
      cursor = page.next_cursor;
      replace(body, providers.length ? providers.map(providerRow)
        : h("tr", {}, h("td", { colspan: "7", class: "muted" }, "No provider has registered yet.")));
      more.hidden = !cursor;
      message.replaceChildren();
    } catch (error) {
      if (!wasAborted(error, signal)) replace(message, errorAlert(error, "the providers"));
    }
  }
  more.addEventListener("click", () => load(cursor));
  const refresh = coalesce(() => load(), 1000);
  listen("market-event", (event) => {
    if (event.detail.args?.provider || event.detail.name === "Credited") refresh();
  }, signal);
  listen("reorg", refresh, signal);
  listen("resync", refresh, signal);
  await load();
  return () => refresh.cancel();
}
