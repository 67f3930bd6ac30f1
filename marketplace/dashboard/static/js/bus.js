// One event target the parts of the dashboard talk through:
//   "market-event"  {detail: an indexed event from the stream}
//   "reorg"         {detail: the stream's reorg notice}: what is shown may be void, read it again
//   "resync"        the stream (re)connected or the service came back: events may have been missed
//   "reachability"  {detail: {reachable, reason}}
//   "stream-state"  {detail: "connecting" | "open" | "down"}
export const bus = new EventTarget();

/** Listens to `type` until `signal` aborts (the page that listened was left). */
export function listen(type, handler, signal) {
  bus.addEventListener(type, handler, { signal });
}
