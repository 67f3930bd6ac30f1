// What the pages share: loading sections with errors shown in place, and coalescing refreshes.

import { ApiError, Unreachable } from "./api.js";
import { h } from "./dom.js";

/** A sentence for a failed read, shown where its data would be. */
export function errorAlert(error, what = "this") {
  let text;
  if (error instanceof Unreachable) text = `Could not load ${what}: the marketplace service did not answer. It will be read again when the service is back.`;
  else if (error instanceof ApiError) text = `Could not load ${what}: ${error.message}`;
  else text = `Could not show ${what}: ${error?.message ?? error}`;
  return h("p", { class: "alert", role: "alert", "data-level": "error" }, text);
}

/**
 * `run` at most once per `ms`, however often it is asked for: a burst of stream events (a batch
 * of ten jobs settling) costs one refetch, not ten.
 */
export function coalesce(run, ms) {
  let timer = null;
  let again = false;
  let running = false;
  const fire = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await run();
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    if (timer === null) timer = setTimeout(fire, ms);
  };
  schedule.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  return schedule;
}

/** Whether an aborted read is the reason for `error` (the page was left): nothing to show. */
export function wasAborted(error, signal) {
  return signal.aborted || error?.name === "AbortError";
}

export function section(title, ...children) {
  const id = `section-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), children);
}
