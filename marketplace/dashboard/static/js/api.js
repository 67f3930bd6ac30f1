// JSON reads of the marketplace API, and whether the service answers at all.

import { bus } from "./bus.js";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

/** The service did not answer (down, unreachable, timed out) or failed with a 5xx. */
export class Unreachable extends Error {}

let reachable = null;

function setReachable(value, reason) {
  if (value === reachable) return;
  const previous = reachable;
  reachable = value;
  bus.dispatchEvent(new CustomEvent("reachability", { detail: { reachable: value, previous, reason } }));
}

export function isReachable() {
  return reachable !== false;
}

/** GET `path` (with `params` as its query) as JSON; ApiError on a 4xx, Unreachable otherwise. */
export async function getJson(path, { params = {}, signal = null, timeout = 8000 } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  const signals = [AbortSignal.timeout(timeout), ...(signal ? [signal] : [])];
  let response;
  try {
    response = await fetch(url, { signal: AbortSignal.any(signals), headers: { Accept: "application/json" } });
  } catch (error) {
    if (signal?.aborted) throw error; // the page moved on: not the service's fault
    setReachable(false, "no answer");
    throw new Unreachable(`the marketplace service did not answer ${url.pathname}`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.status >= 500) {
    setReachable(false, `${response.status} ${body?.detail ?? response.statusText}`);
    throw new Unreachable(`${url.pathname}: ${response.status} ${body?.detail ?? response.statusText}`);
  }
  setReachable(true);
  if (!response.ok) throw new ApiError(response.status, body?.detail ?? response.statusText);
  return body;
}
