// The small parts every page shows: amounts, addresses and digests with copy buttons, times, badges.

import { h } from "./dom.js";
import { chainNow } from "./clock.js";
import { exactAmount, exactTime, formatUnits, relativeTime, shortAddress, shortHash, unitOf } from "./format.js";

/** An amount in ETH or token units; the exact base-unit value on hover. */
export function amount(value, token) {
  return h("span", { class: "amount", title: exactAmount(value, token), "data-exact": value },
    `${formatUnits(value)} ${unitOf(token)}`);
}

/** A stake amount: the market's stake token is ETH on every deployment this dashboard knows. */
export function stake(value) {
  return amount(value, "0x0000000000000000000000000000000000000000");
}

async function writeClipboard(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-HTTP origins other than localhost have no Clipboard API: fall back to a selection.
  const area = h("textarea", { class: "visually-hidden", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("copy refused");
}

/** A button that copies `text` and says so, for people and screen readers. */
export function copyButton(text, what) {
  const button = h("button", { type: "button", class: "copy", "aria-label": `Copy ${what} ${text}`, title: `Copy ${what}` }, "Copy");
  button.addEventListener("click", async () => {
    try {
      await writeClipboard(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Select it";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  return button;
}

/** A shortened address linking to its provider page (or `href`), with the full address on hover. */
export function address(value, { href = null, copy = true } = {}) {
  if (!value) return h("span", { class: "muted" }, "—");
  const label = shortAddress(value);
  const text = href === false
    ? h("span", { class: "mono", title: value }, label)
    : h("a", { class: "mono", href: href ?? `/providers/${value}`, title: value }, label);
  return h("span", { class: "ref" }, text, copy ? copyButton(value, "address") : null);
}

/** A shortened hash or digest with the full value on hover and a copy button. */
export function digest(value, { href = null, what = "hash" } = {}) {
  if (!value) return h("span", { class: "muted" }, "—");
  const label = shortHash(value);
  const text = href
    ? h("a", { class: "mono", href, title: value }, label)
    : h("span", { class: "mono", title: value }, label);
  return h("span", { class: "ref" }, text, copyButton(value, what));
}

/** A relative time ("3 minutes ago") kept current by `refreshTimes`, exact on hover. */
export function time(seconds) {
  if (seconds === null || seconds === undefined) return h("span", { class: "muted" }, "—");
  return h("time", {
    datetime: new Date(seconds * 1000).toISOString(),
    title: exactTime(seconds),
    "data-ts": seconds,
  }, relativeTime(seconds, chainNow()));
}

/** Updates every relative time on the page. */
export function refreshTimes(root = document) {
  const now = chainNow();
  for (const element of root.querySelectorAll("time[data-ts]")) {
    element.textContent = relativeTime(Number(element.dataset.ts), now);
  }
}

/** A job status or assignment outcome: the word itself, coloured. */
export function badge(status) {
  return h("span", { class: "badge", "data-status": status ?? "none" }, status ?? "pending");
}

export function jobLink(id) {
  return h("a", { href: `/jobs/${id}` }, `#${id}`);
}
