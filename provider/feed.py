"""Where a provider hears of new jobs: the marketplace's live event stream, or, while the
marketplace is unreachable, the chain's own JobPosted logs.

Both only suggest job ids; the daemon checks every suggestion against the chain before acting on
it, so a marketplace that is wrong or behind can cost a provider an opportunity, never money.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from marketplace.chain.market import Market
from marketplace.chain.rpc import RpcClient
from marketplace.protocol.events import topic

log = logging.getLogger("cmarket.provider.feed")

RECONNECT_SECONDS = 1.0
STREAM_READ_TIMEOUT = 45.0  # the service sends a keep-alive comment after 15 s of silence


class JobFeed:
    """Collects the ids of newly posted jobs; `drain()` hands them over.

    A background thread follows `GET /v1/events` (resuming with Last-Event-ID after a drop);
    whenever it cannot, `poll_chain()` (called by the daemon's loop) reads JobPosted logs from
    the last block the feed had seen.
    """

    def __init__(self, api_url: str, rpc: RpcClient, market: Market, *, from_block: int = 0) -> None:
        self.api_url = api_url.rstrip("/")
        self.rpc = rpc
        self.market = market
        self.last_block = from_block  # every job posted at or below it has been suggested
        self._ids: set[int] = set()
        self._full: set[int] = set()  # jobs whose every slot is now claimed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._api_up = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_event_id: str | None = None

    # ── lifecycle ──

    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name="job-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def api_up(self) -> bool:
        return self._api_up.is_set()

    # ── what the daemon reads ──

    def drain(self) -> set[int]:
        """Job ids suggested since the last call."""
        with self._lock:
            ids, self._ids = self._ids, set()
        return ids

    def drain_full(self) -> set[int]:
        """Jobs heard to have started (every slot claimed) since the last call: candidates no more.
        A hint only, like the suggestions: a claim of a full job is skipped on-chain anyway."""
        with self._lock:
            full, self._full = self._full, set()
        return full

    def _suggest(self, ids: set[int], block: int | None = None) -> None:
        with self._lock:
            self._ids |= ids
            if block is not None:
                self.last_block = max(self.last_block, block)

    def poll_chain(self) -> int:
        """Reads JobPosted logs since the last block seen (only while the stream is down);
        returns how many jobs it suggested."""
        if self.api_up:
            return 0
        head = int(self.rpc.call("eth_blockNumber"), 16)
        start = self.last_block
        if head < start:
            return 0
        logs = self.rpc.logs(self.market.address, start, head, [topic("JobPosted")])
        ids = {int(entry["topics"][1], 16) for entry in logs if not entry.get("removed")}
        self._suggest(ids, head)
        return len(ids)

    # ── the stream ──

    def _follow(self) -> None:
        with httpx.Client(
            base_url=self.api_url, timeout=httpx.Timeout(5.0, read=STREAM_READ_TIMEOUT)
        ) as http:
            while not self._stop.is_set():
                try:
                    if self._last_event_id is None:
                        self._sweep(http)
                    self._stream(http)
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    if self._api_up.is_set():
                        log.warning("marketplace stream lost (%s); following the chain meanwhile", exc)
                    self._api_up.clear()
                self._stop.wait(RECONNECT_SECONDS)

    def _sweep(self, http: httpx.Client) -> None:
        """The jobs open now (the stream only tells of new ones). The stream's position is read
        first, so a job posted during the sweep is in the sweep, the stream, or both."""
        start = self._stream_position(http)
        cursor: str | None = None
        ids: set[int] = set()
        for _ in range(10_000):
            params: dict[str, str | int] = {"status": "open", "limit": 200}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/v1/jobs", params=params)
            page.raise_for_status()
            body = page.json()
            ids |= {int(job["id"]) for job in body["jobs"]}
            cursor = body["next_cursor"]
            if cursor is None:
                break
        self._suggest(ids)
        self._last_event_id = str(start)

    def _stream_position(self, http: httpx.Client) -> int:
        """The newest stream id, from the comment that opens a stream ("events after N")."""
        with http.stream("GET", "/v1/events", params={"timeout": 0.05}) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith(": events after "):
                    return int(line.removeprefix(": events after "))
        raise ValueError("the event stream did not say where it starts")

    def _stream(self, http: httpx.Client) -> None:
        headers = {} if self._last_event_id is None else {"Last-Event-ID": self._last_event_id}
        with http.stream("GET", "/v1/events", headers=headers) as response:
            response.raise_for_status()
            self._api_up.set()
            log.info("following the marketplace's event stream at %s", self.api_url)
            for event_id, name, data in _messages(response.iter_lines()):
                if self._stop.is_set():
                    return
                self._last_event_id = event_id
                if name == "JobPosted":
                    self._suggest({int(data["job_id"])}, int(data["block_number"]))
                elif name in ("JobStarted", "JobCancelled"):
                    with self._lock:
                        self._full.add(int(data["job_id"]))
                elif name != "reorg" and "block_number" in data:
                    self._suggest(set(), int(data["block_number"]))


def _messages(lines: Iterator[str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, event, data) of each Server-Sent Event carrying an id; comments are skipped."""
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "id" in fields and "data" in fields:
                yield fields["id"], fields.get("event", "message"), json.loads(fields["data"])
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return
