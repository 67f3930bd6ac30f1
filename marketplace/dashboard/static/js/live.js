// The live event stream (Server-Sent Events from /v1/events), shared by every page.
//
// Message ids are opaque: EventSource sends the last one back on reconnect and the server resumes
// after it. A new EventSource (after the server refused or closed the stream for good) starts at
// the newest event, so the pages are told to read their data again ("resync"), as after a reorg.

import { bus } from "./bus.js";

// Every event the contract emits; EventSource delivers a named event only to a listener of its name.
const EVENT_NAMES = [
  "BatchItemSkipped", "Credited", "FeeUpdated", "JobCancelled", "JobClaimed", "JobFinalized", "JobPosted",
  "JobStarted", "OwnershipTransferStarted", "OwnershipTransferred", "Paused", "PaymentTokenUpdated",
  "ProviderRegistered", "ResultCommitted", "ResultRevealed", "Slashed", "StakeWithdrawn", "Staked",
  "TreasuryUpdated", "Unpaused", "UnstakeRequested", "Withdrawn", "message",
];

let state = "connecting";

function setState(next) {
  if (next === state) return;
  state = next;
  bus.dispatchEvent(new CustomEvent("stream-state", { detail: next }));
}

export function streamState() {
  return state;
}

function parse(message) {
  try {
    return JSON.parse(message.data);
  } catch {
    return null; // not ours to show; the next resync reads the truth anyway
  }
}

export function startLive(url = "/v1/events") {
  let source = null;
  let backoff = 1000;

  const onEvent = (message) => {
    const data = parse(message);
    if (data) bus.dispatchEvent(new CustomEvent("market-event", { detail: data }));
  };
  const onReorg = (message) => {
    bus.dispatchEvent(new CustomEvent("reorg", { detail: parse(message) ?? {} }));
  };

  function connect() {
    source = new EventSource(url);
    source.addEventListener("open", () => {
      backoff = 1000;
      setState("open");
      bus.dispatchEvent(new Event("resync"));
    });
    for (const name of EVENT_NAMES) source.addEventListener(name, onEvent);
    source.addEventListener("reorg", onReorg);
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        // Refused (not a stream, or a 4xx/5xx): EventSource gives up, so we retry ourselves.
        setState("down");
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 15000);
      } else {
        setState("connecting"); // EventSource reconnects by itself, with Last-Event-ID
      }
    });
  }

  connect();
  window.addEventListener("pagehide", () => source?.close());
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) connect(); // restored from the back-forward cache with its stream closed
  });
}
