"""The REST API through real HTTP, over a database filled by really indexing a devnet market.

One anvil per module runs the scripted demo market (`marketplace.cli.demo.scripted`), plus three jobs left
unfinished (one past its commit deadline, one running, one open); the indexer indexes it all
into a SQLite file, and a uvicorn server on a loopback port serves the API over it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import quote

import httpx
import pytest
from eth_utils import to_checksum_address
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from sqlalchemy import Engine, event, select

from marketplace.api import queries, schemas
from marketplace.api.app import create_app
from marketplace.api.cache import ResponseCache
from marketplace.api.deps import CachedReads, Database
from marketplace.api.fast_path import JOB_ROUTE, JobDetailFastPath
from marketplace.api.params import encode_cursor
from marketplace.api.settings import ApiSettings
from marketplace.chain.bootstrap import DevnetMarket, setup_devnet_market
from marketplace.chain.devnet import Devnet, free_port
from marketplace.chain.rpc import RpcClient
from marketplace.cli.demo.scripted import COLLATERAL, Demo
from marketplace.client import MarketplaceApi
from marketplace.indexer.status import IndexerStatus, Revision
from marketplace.indexer.sync import Indexer
from marketplace.protocol.hashing import cid_v1, commitment
from marketplace.protocol.spec import spec_hash
from marketplace.protocol.status import JobStatus
from marketplace.protocol.views import ETH
from marketplace.store.blobs import BlobReader, FilesystemBlobStore
from marketplace.store.database import make_engine, migrate
from marketplace.store.schema import Job, RawEvent
from tests.services import post_unfinished_jobs, serve

STATUSES = ("open", "running", "revealing", "completed", "failed", "cancelled")
BLOB_LIMIT = 256 * 1024
UNKNOWN_ADDRESS = to_checksum_address("0x" + "ab" * 20)


# ── the indexed market and the servers ──


@dataclass
class IndexedMarket:
    node: Devnet
    world: DevnetMarket
    demo: Demo
    engine: Engine
    db_path: Path
    unfinished: dict[str, int]  # "revealing" / "running" / "open" -> job id
    names: dict[str, str] = field(default_factory=dict)  # name -> address

    @property
    def tusd(self) -> str:
        return self.world.token

    def job_count(self) -> int:
        return self.world.market.job_count()


def index_to_head(engine: Engine, node: Devnet, market: str) -> None:
    rpc = RpcClient(node.rpc_url)
    try:
        indexer = Indexer(engine, rpc, market, finality_depth=5)
        indexer.initialize()
        while not indexer.step().caught_up:
            pass
    finally:
        rpc.close()


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexedMarket]:
    db_path = tmp_path_factory.mktemp("api") / "market.db"
    with Devnet() as node:
        world = setup_devnet_market(node)
        demo = Demo(Console(quiet=True), node, world)
        demo.set_up()
        demo.run()
        unfinished = post_unfinished_jobs(demo, node, claim_window=600)
        engine = make_engine(f"sqlite:///{db_path}")
        migrate(engine)
        index_to_head(engine, node, world.deployment.market)
        names = {actor.name: str(actor.address) for actor in demo.everyone()}
        yield IndexedMarket(node, world, demo, engine, db_path, unfinished, names)
        engine.dispose()


def make_app(engine: Engine, blob_root: Path, indexer_status: IndexerStatus | None = None) -> FastAPI:
    settings = ApiSettings(max_blob_bytes=BLOB_LIMIT, stream_poll_seconds=0.05, stream_keepalive_seconds=0.2)
    return create_app(engine, FilesystemBlobStore(blob_root), settings, indexer_status=indexer_status)


@dataclass
class Api:
    url: str
    http: httpx.Client
    blob_root: Path

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def ok(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def all_jobs(self, limit: int, **filters: Any) -> list[dict[str, Any]]:
        """Every page of /v1/jobs, following next_cursor."""
        jobs: list[dict[str, Any]] = []
        cursor = None
        for _ in range(100):
            page = self.ok("/v1/jobs", limit=limit, **filters, **({"cursor": cursor} if cursor else {}))
            assert len(page["jobs"]) <= limit
            jobs += page["jobs"]
            cursor = page["next_cursor"]
            if cursor is None:
                return jobs
        raise AssertionError("paging did not end")


@pytest.fixture(scope="module")
def api(market: IndexedMarket, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    blob_root = tmp_path_factory.mktemp("blobs")
    with serve(make_app(market.engine, blob_root)) as url, httpx.Client(base_url=url, timeout=20) as http:
        yield Api(url, http, blob_root)


def stored_job_ids(market: IndexedMarket) -> list[int]:
    return list(range(market.job_count(), 0, -1))


# ── health, metrics, docs ──


def test_health_reports_the_checkpoint(api: Api, market: IndexedMarket) -> None:
    health = api.ok("/health")
    head = market.world.w3.eth.get_block("latest")
    assert health == {
        "status": "ok", "chain_id": 31337, "market": market.world.deployment.market,
        "indexed_block": head["number"], "head_block": head["number"], "lag_blocks": 0,
        "last_block_timestamp": head["timestamp"], "indexer": None,
    }  # fmt: skip


def test_health_says_stalled_while_the_indexer_of_the_process_cannot_reach_the_chain(
    market: IndexedMarket, tmp_path: Path
) -> None:
    with market_copy(market, tmp_path) as (engine, _):
        live = Indexer(
            engine, RpcClient(market.node.rpc_url), market.world.deployment.market, finality_depth=5
        )
        live.initialize()
        live.status.stepped(live.step().checkpoint)  # what the loop records after a step that went through
        with serve(make_app(engine, tmp_path / "blobs", indexer_status=live.status)) as url:
            following = httpx.get(f"{url}/health").json()
            assert (following["status"], following["indexer"]["state"]) == ("ok", "following")
            assert following["indexer"]["seconds_since_contact"] < 5
            live.rpc = RpcClient(f"http://127.0.0.1:{free_port()}", timeout=0.5)  # the node went away
            stop = threading.Event()
            loop = threading.Thread(target=live.run, args=(stop,), daemon=True)
            loop.start()
            try:
                deadline = time.monotonic() + 10
                while (health := httpx.get(f"{url}/health").json())["status"] != "stalled":
                    assert time.monotonic() < deadline, health
                    time.sleep(0.05)
            finally:
                stop.set()
                loop.join(timeout=10)
    assert health["indexer"]["state"] == "retrying"
    assert "ConnectError" in health["indexer"]["error"]
    assert health["indexed_block"] == following["indexed_block"]  # the data stays, marked stale


def test_health_before_and_while_indexing(market: IndexedMarket, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    migrate(engine)
    with serve(make_app(engine, tmp_path / "blobs")) as url:
        assert httpx.get(f"{url}/health").json() == {
            "status": "not-initialized", "chain_id": None, "market": None, "indexed_block": None,
            "head_block": None, "lag_blocks": None, "last_block_timestamp": None, "indexer": None,
        }  # fmt: skip
        Indexer(engine, RpcClient(market.node.rpc_url), market.world.deployment.market).initialize()
        health = httpx.get(f"{url}/health")
        assert health.status_code == 200
        assert health.json()["status"] == "indexing"
        assert health.json()["indexed_block"] is None
    engine.dispose()


def test_metrics_label_requests_by_route_template(api: Api) -> None:
    api.get("/v1/jobs/1")
    api.get("/v1/jobs/999999")
    api.get("/no/such/path")
    text = api.get("/metrics").text
    assert 'cmarket_http_request_seconds_count{method="GET",route="/v1/jobs/{job_id}",status="200"}' in text
    assert 'cmarket_http_request_seconds_count{method="GET",route="/v1/jobs/{job_id}",status="404"}' in text
    assert 'route="unmatched",status="404"' in text
    assert 'route="/v1/jobs/1"' not in text and "/no/such/path" not in text
    assert "cmarket_indexer_events_total" in text


def test_openapi_documents_every_route(api: Api) -> None:
    assert api.get("/docs").status_code == 200
    paths = api.ok("/openapi.json")["paths"]
    routes = {
        ("get", "/health"), ("get", "/metrics"), ("get", "/v1/jobs"), ("get", "/v1/jobs/{job_id}"),
        ("get", "/v1/providers"), ("get", "/v1/providers/{address}"), ("get", "/v1/stats"),
        ("put", "/v1/blobs"), ("get", "/v1/blobs/{digest}"), ("get", "/v1/events"),
        ("post", "/v1/blobs/batch"), ("post", "/v1/blobs/query"),
    }  # fmt: skip
    assert {(method, path) for path, item in paths.items() for method in item} == routes
    for method, path in routes:
        assert paths[path][method]["summary"], (method, path)
    job = paths["/v1/jobs/{job_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert job == {"$ref": "#/components/schemas/JobDetail"}


# ── jobs ──


def test_every_demo_job_matches_what_the_chain_settled(api: Api, market: IndexedMarket) -> None:
    for demo_job in market.demo.jobs:
        job = api.ok(f"/v1/jobs/{demo_job.job_id}")
        view = market.world.market.job(demo_job.job_id)
        assert job["status"] == str(demo_job.outcome) == str(view.status)
        assert (job["replicas"], job["claims"], job["commits"], job["reveals"]) == (
            view.replicas, view.claims, view.commits, view.reveals,
        )  # fmt: skip
        assert job["token"] == demo_job.token
        assert job["reward_per_replica"] == str(demo_job.reward)
        assert job["collateral_per_replica"] == str(COLLATERAL)
        assert job["requester"] == market.names["carol"]
        assert job["spec_hash"] == "0x" + spec_hash(demo_job.spec).hex()
        expected_result = "0x" + demo_job.result_hash.hex() if demo_job.result_hash else None
        assert job["result_hash"] == expected_result
        winners = {a["provider"] for a in job["assignments"] if a["outcome"] == "won"}
        assert winners == set(demo_job.winners)
        assert [a["slot"] for a in job["assignments"]] == list(range(job["claims"]))
        assert job["posted_block"] <= (job["finished_block"] or job["posted_block"])


def assignment_of(job: dict[str, Any], address: str) -> Any:
    (found,) = [a for a in job["assignments"] if a["provider"] == address]
    return found


def test_mallory_is_slashed_for_a_wrong_result_and_for_a_missing_reveal(
    api: Api, market: IndexedMarket
) -> None:
    mallory = market.names["mallory"]
    wrong, silent = api.ok("/v1/jobs/3"), api.ok("/v1/jobs/4")
    assert (wrong["status"], silent["status"]) == ("completed", "completed")
    assert silent["token"] == market.tusd
    lied = assignment_of(wrong, mallory)
    assert (lied["status"], lied["outcome"], lied["slashed_amount"]) == (
        "revealed",
        "slashed",
        str(COLLATERAL),
    )
    assert lied["result_hash"] != wrong["result_hash"]
    quiet = assignment_of(silent, mallory)
    assert (quiet["status"], quiet["outcome"], quiet["slashed_amount"]) == (
        "committed",
        "slashed",
        str(COLLATERAL),
    )
    assert quiet["commitment"] is not None and quiet["revealed_block"] is None
    for job in (wrong, silent):
        for name in ("alice", "bob"):
            honest = assignment_of(job, market.names[name])
            assert (honest["outcome"], honest["slashed_amount"]) == ("won", "0")
            assert honest["result_hash"] == job["result_hash"]


def test_a_job_without_quorum_fails_and_a_job_nobody_claimed_is_cancelled(
    api: Api, market: IndexedMarket
) -> None:
    failed = api.ok("/v1/jobs/5")
    assert (failed["status"], failed["result_hash"]) == ("failed", None)
    outcomes = {a["provider"]: (a["status"], a["outcome"]) for a in failed["assignments"]}
    assert outcomes == {
        market.names["alice"]: ("revealed", "returned"),
        market.names["bob"]: ("claimed", "slashed"),
        market.names["mallory"]: ("revealed", "returned"),
    }
    cancelled = api.ok("/v1/jobs/6")
    assert (cancelled["status"], cancelled["assignments"], cancelled["claims"]) == ("cancelled", [], 0)
    assert cancelled["finished_block"] is not None
    assert [event["name"] for event in cancelled["timeline"]] == ["JobPosted", "JobCancelled", "Credited"]
    refund = cancelled["timeline"][-1]["args"]
    assert (refund["account"], refund["amount"]) == (market.names["carol"], cancelled["reward_per_replica"])


def test_timeline_is_the_jobs_events_in_chain_order(api: Api, market: IndexedMarket) -> None:
    job = api.ok("/v1/jobs/3")
    timeline = job["timeline"]
    names = [event["name"] for event in timeline]
    assert names[0] == "JobPosted" and names[-1] == "JobFinalized"
    assert sorted(names) == sorted(
        ["JobPosted", "JobStarted", "JobFinalized", "Slashed"]
        + ["JobClaimed", "ResultCommitted", "ResultRevealed"] * 3
        + ["Credited"] * 5  # two rewards, the fee, mallory's collateral to the treasury, a refund
    )
    assert [event["position"] for event in timeline] == sorted(event["position"] for event in timeline)
    assert timeline[0]["tx_hash"] == job["posted_tx"]
    assert timeline[0]["block_number"] == job["posted_block"]
    assert (
        timeline[0]["args"]["jobId"] == 3
        and timeline[0]["args"]["rewardPerReplica"] == job["reward_per_replica"]
    )
    slashed = timeline[names.index("Slashed")]
    assert slashed["args"] == {"provider": market.names["mallory"], "jobId": 3, "amount": str(COLLATERAL)}
    assert set(timeline[0]) == {
        "position", "name", "block_number", "block_timestamp", "tx_hash", "gas_used", "args",
    }  # fmt: skip
    receipts = {e["tx_hash"]: market.world.w3.eth.get_transaction_receipt(e["tx_hash"]) for e in timeline}
    assert all(event["gas_used"] == receipts[event["tx_hash"]]["gasUsed"] for event in timeline)
    with market.engine.connect() as connection:
        stored = connection.execute(
            select(RawEvent.position).where(RawEvent.job_id == 3).order_by(RawEvent.position)
        ).scalars()
        assert [event["position"] for event in timeline] == list(stored)


def test_effective_status_of_a_running_job_past_its_commit_deadline(api: Api, market: IndexedMarket) -> None:
    late, running, open_job = (market.unfinished[name] for name in ("revealing", "running", "open"))
    job = api.ok(f"/v1/jobs/{late}")
    assert job["status"] == "revealing"
    assert job["commit_deadline"] < api.ok("/health")["last_block_timestamp"]
    assert market.world.market.job(late).status is JobStatus.REVEALING  # what the contract says
    with market.engine.connect() as connection:  # what the indexer stored: no event moved it on
        assert connection.execute(select(Job.status).where(Job.id == late)).scalar_one() == "running"
    assert api.ok(f"/v1/jobs/{running}")["status"] == "running"
    assert api.ok(f"/v1/jobs/{open_job}")["status"] == "open"
    assert [j["id"] for j in api.ok("/v1/jobs", status="revealing")["jobs"]] == [late]
    assert [j["id"] for j in api.ok("/v1/jobs", status="running")["jobs"]] == [running]
    assert [j["id"] for j in api.ok("/v1/jobs", status="open")["jobs"]] == [open_job]


@pytest.mark.parametrize("limit", [1, 2, 5, 7, 50, 200])
def test_paging_returns_every_job_once_newest_first(api: Api, market: IndexedMarket, limit: int) -> None:
    jobs = api.all_jobs(limit)
    assert [job["id"] for job in jobs] == stored_job_ids(market)


def test_a_list_item_is_the_job_without_its_timeline(api: Api) -> None:
    (listed,) = api.ok("/v1/jobs", limit=1, cursor=encode_cursor("jobs", 4))["jobs"]
    detail = api.ok("/v1/jobs/3")
    assert "timeline" not in listed
    assert listed == {key: value for key, value in detail.items() if key != "timeline"}


def test_paging_through_a_filter(api: Api) -> None:
    completed = api.all_jobs(4, status="completed")
    assert len(completed) == 14 and {job["status"] for job in completed} == {"completed"}
    assert [job["id"] for job in completed] == sorted((job["id"] for job in completed), reverse=True)


def test_filters(api: Api, market: IndexedMarket) -> None:
    names, unfinished = market.names, market.unfinished
    every = set(stored_job_ids(market))

    def ids(**filters: str) -> set[int]:
        return {job["id"] for job in api.all_jobs(200, **filters)}

    assert ids(requester=names["carol"]) == every
    assert ids(requester=names["carol"].lower()) == every  # any case is accepted
    assert ids(requester=names["alice"]) == set()
    assert ids(provider=names["mallory"]) == {3, 4, 5}
    assert ids(provider=names["alice"].upper().replace("0X", "0x")) == {
        1,
        3,
        4,
        5,
        unfinished["revealing"],
        unfinished["running"],
    }
    assert ids(provider=names["bob"]) == {
        2,
        3,
        4,
        5,
        *range(7, 17),
        unfinished["revealing"],
        unfinished["running"],
    }
    assert ids(token=market.tusd) == {2, 4}
    assert ids(token=ETH) == every - {2, 4}
    assert ids(provider=names["bob"], status="failed") == {5}
    assert ids(provider=names["mallory"], token=market.tusd, status="completed") == {4}
    by_status = {status: ids(status=status) for status in STATUSES}
    assert set().union(*by_status.values()) == every
    assert sum(len(found) for found in by_status.values()) == len(every)
    assert by_status["failed"] == {5} and by_status["cancelled"] == {6}


# ── providers ──


def test_providers_page_by_address(api: Api, market: IndexedMarket) -> None:
    providers, cursor = [], None
    while True:
        page = api.ok("/v1/providers", limit=1, **({"cursor": cursor} if cursor else {}))
        providers += page["providers"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    addresses = [provider["address"] for provider in providers]
    assert addresses == sorted(market.names[name] for name in ("alice", "bob", "mallory"))
    assert api.ok("/v1/providers")["providers"] == providers
    assert all("slashes" not in provider for provider in providers)


def test_provider_detail_earnings_and_slashes(api: Api, market: IndexedMarket) -> None:
    demo, tusd = market.demo, market.tusd
    mallory = api.ok(f"/v1/providers/{market.names['mallory']}")
    assert (mallory["jobs_claimed"], mallory["jobs_completed"], mallory["jobs_slashed"]) == (3, 0, 2)
    assert mallory["slashed_amount"] == str(2 * COLLATERAL)
    assert mallory["earned"] == {}
    assert mallory["metadata_uri"] == "demo://mallory"
    assert [(s["job_id"], s["amount"]) for s in mallory["slashes"]] == [
        (3, str(COLLATERAL)),
        (4, str(COLLATERAL)),
    ]
    job_4 = api.ok("/v1/jobs/4")
    assert mallory["slashes"][1]["block_number"] == job_4["finished_block"]
    assert mallory["slashes"][1]["tx_hash"] == job_4["timeline"][-1]["tx_hash"]

    for actor in (demo.alice, demo.bob):
        address = actor.address
        provider = api.ok(f"/v1/providers/{address.lower()}")
        # the demo recorded everyone's credits just before they withdrew them all
        expected = {ETH: demo.balances_before[address], tusd: demo.token_before[address]}
        assert provider["earned"] == {token: str(amount) for token, amount in expected.items() if amount}
        view = market.world.market.provider(address)
        assert (provider["staked"], provider["locked"]) == (str(view.free_stake), str(view.locked_stake))
    bob = api.ok(f"/v1/providers/{market.names['bob']}")
    assert [(s["job_id"], s["amount"]) for s in bob["slashes"]] == [(5, str(COLLATERAL))]
    assert api.ok(f"/v1/providers/{market.names['alice']}")["slashes"] == []


# ── stats ──


def test_stats(api: Api, market: IndexedMarket) -> None:
    stats = api.ok("/v1/stats")
    assert stats["jobs_by_status"] == {
        "open": 1,
        "running": 1,
        "revealing": 1,
        "completed": 14,
        "failed": 1,
        "cancelled": 1,
    }
    assert stats["jobs_total"] == market.job_count() == 19
    chain = market.world.market
    volume: dict[str, int] = {}
    for job_id in range(1, market.job_count() + 1):
        view = chain.job(job_id)
        volume[view.token] = volume.get(view.token, 0) + view.reward_per_replica * view.replicas
    assert stats["volume"] == {token: str(amount) for token, amount in volume.items()}
    providers = [chain.provider(market.names[name]) for name in ("alice", "bob", "mallory")]
    assert stats["providers"] == 3
    assert stats["total_staked"] == str(sum(p.free_stake + p.locked_stake for p in providers))
    durations = [job["finished_at"] - job["posted_at"] for job in api.all_jobs(200, status="completed")]
    assert stats["median_completion_seconds"] == statistics.median(durations)


# ── the event stream ──


@dataclass
class Sse:
    id: str | None = None
    event: str | None = None
    data: Any = None
    comments: list[str] = field(default_factory=list)


def sse_messages(response: httpx.Response) -> Iterator[Sse]:
    message = Sse()
    for line in response.iter_lines():
        if line == "":
            yield message
            message = Sse()
        elif line.startswith(":"):
            message.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                message.data = json.loads(value)
            elif name in ("id", "event"):
                setattr(message, name, value)


def read_events(api: Api, **params: Any) -> tuple[list[Sse], list[str]]:
    """A finite stream (ended by max_events or timeout): its events, and its comments."""
    headers = {}
    if "last_event_id" in params:
        headers["Last-Event-ID"] = str(params.pop("last_event_id"))
    with api.http.stream("GET", "/v1/events", params=params, headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = list(sse_messages(response))
    return [m for m in messages if m.id is not None], [c for m in messages for c in m.comments]


def all_seqs(market: IndexedMarket) -> list[int]:
    with market.engine.connect() as connection:
        return list(connection.execute(select(RawEvent.seq).order_by(RawEvent.seq)).scalars())


def test_events_resume_exactly_after_the_last_event_id(api: Api, market: IndexedMarket) -> None:
    seqs = all_seqs(market)
    assert seqs == list(range(1, len(seqs) + 1))  # no reorg: numbered in chain order from 1
    first, _ = read_events(api, after=0, max_events=7)
    assert [int(m.id) for m in first if m.id] == seqs[:7]
    event = first[0]
    assert event.event == event.data["name"] == "OwnershipTransferred"  # the market's deployment
    assert set(event.data) == {
        "seq", "position", "name", "block_number", "block_timestamp", "tx_hash", "gas_used", "log_index",
        "job_id", "args",
    }  # fmt: skip
    assert event.data["position"] == event.data["block_number"] * 1_000_000 + event.data["log_index"]
    assert event.data["seq"] == int(event.id or 0)
    rest, _ = read_events(api, last_event_id=first[-1].id, after=0, max_events=len(seqs) - 7)
    assert [int(m.id) for m in rest if m.id] == seqs[7:]
    everything = [m.data for m in first + rest]
    assert [e["position"] for e in everything] == sorted(e["position"] for e in everything)
    assert everything[-1]["name"] == "JobPosted"  # the open job, the last event


def test_an_idle_stream_starts_after_the_newest_event_and_keeps_alive(
    api: Api, market: IndexedMarket
) -> None:
    events, comments = read_events(api, timeout=0.7)
    assert events == []
    assert comments[0] == f"events after {all_seqs(market)[-1]}"
    assert comments.count("keep-alive") >= 2


@contextmanager
def market_copy(market: IndexedMarket, directory: Path) -> Iterator[tuple[Engine, Indexer]]:
    """A copy of the indexed store, with its own indexer: tests that index more leave the module's intact."""
    path = directory / "copy.db"
    with sqlite3.connect(market.db_path) as source, sqlite3.connect(path) as target:
        source.backup(target)
    engine = make_engine(f"sqlite:///{path}")
    rpc = RpcClient(market.node.rpc_url)
    indexer = Indexer(engine, rpc, market.world.deployment.market, finality_depth=5)
    indexer.initialize()
    snapshot = market.node.snapshot()
    try:
        yield engine, indexer
    finally:
        market.node.revert(snapshot)
        for actor in (market.demo.requester, *market.demo.providers, market.demo.treasury):
            actor.sender.resync()  # their cached nonces may be ahead of the reverted chain
        rpc.close()
        engine.dispose()


def test_a_newly_indexed_event_arrives_on_an_open_stream(market: IndexedMarket, tmp_path: Path) -> None:
    running = market.unfinished["running"]
    with (
        market_copy(market, tmp_path) as (engine, indexer),
        serve(make_app(engine, tmp_path / "blobs")) as url,
        httpx.Client(base_url=url, timeout=20) as http,
    ):
        before = http.get(f"/v1/jobs/{running}").json()  # now in the response cache
        assert http.get(f"/v1/jobs/{running}").json() == before
        with http.stream("GET", "/v1/events", params={"max_events": 1, "timeout": 20}) as response:
            messages = sse_messages(response)
            assert next(messages).comments[0].startswith("events after")  # the stream is open
            digest = commitment(running, market.demo.bob.address, b"\x03" * 32, b"\x04" * 32)
            market.demo.bob.commit(running, digest)
            while not indexer.step().caught_up:
                pass
            event = next(m for m in messages if m.id is not None)
        assert event.event == "ResultCommitted"
        assert event.data["job_id"] == running
        assert event.data["args"] == {
            "jobId": running,
            "provider": market.demo.bob.address,
            "commitment": "0x" + digest.hex(),
        }
        after = http.get(
            f"/v1/jobs/{running}"
        ).json()  # the cached answer was dropped with the old checkpoint
        assert (before["commits"], after["commits"]) == (0, 1)
        assert after["timeline"][-1]["name"] == "ResultCommitted"


def test_with_the_indexer_in_process_cached_answers_need_no_database_until_it_commits(
    market: IndexedMarket, tmp_path: Path
) -> None:
    running = market.unfinished["running"]
    checkouts: list[object] = []  # connections taken from the pool: every read, even a point read
    with market_copy(market, tmp_path) as (engine, indexer):
        indexer.status.stepped(indexer.step().checkpoint)
        event.listen(engine, "checkout", lambda *args: checkouts.append(args[0]))
        with (
            serve(make_app(engine, tmp_path / "blobs", indexer_status=indexer.status)) as url,
            httpx.Client(base_url=url, timeout=20) as http,
        ):
            before = http.get(f"/v1/jobs/{running}").json()  # read from the database, then cached
            reads = len(checkouts)
            assert reads > 0
            assert [http.get(f"/v1/jobs/{running}").json() for _ in range(3)] == [before] * 3
            assert len(checkouts) == reads  # served from memory: the database was not touched

            market.demo.bob.commit(
                running, commitment(running, market.demo.bob.address, b"\x05" * 32, b"\x06" * 32)
            )
            while not (result := indexer.step()).caught_up:
                pass
            indexer.status.stepped(result.checkpoint)
            after = http.get(f"/v1/jobs/{running}").json()
        assert (before["commits"], after["commits"]) == (0, 1)  # the commit made the cache stale
        assert len(checkouts) > reads


# ── blobs ──


def blob_files(api: Api) -> list[Path]:
    return sorted(path for path in api.blob_root.rglob("*") if path.is_file())


def test_blob_round_trip(api: Api) -> None:
    data = b"\x00spec bytes\xff" * 1000
    digest = hashlib.sha256(data).hexdigest()
    stored = api.http.put("/v1/blobs", content=data)
    assert stored.status_code == 201
    assert stored.json() == {"digest": digest, "cid": cid_v1(bytes.fromhex(digest)), "size": len(data)}
    again = api.http.put("/v1/blobs", params={"sha256": "0x" + digest.upper()}, content=data)
    assert (again.status_code, again.json()) == (200, stored.json())
    fetched = api.get(f"/v1/blobs/{digest}")
    assert fetched.status_code == 200 and fetched.content == data
    assert fetched.headers["content-type"] == "application/octet-stream"
    assert fetched.headers["content-length"] == str(len(data))
    assert fetched.headers["etag"].strip('"') == digest
    assert api.get(f"/v1/blobs/0x{digest.upper()}").content == data
    assert api.get(f"/v1/blobs/{digest}", headers={"If-None-Match": f'"{digest}"'}).status_code == 304


def test_blobs_in_batches_round_trip_and_say_what_is_missing_or_too_large(api: Api) -> None:
    small = [f"result {index}".encode() for index in range(5)] + [b""]
    stored = api.http.post("/v1/blobs/batch", json={"blobs": [base64.b64encode(b).decode() for b in small]})
    assert stored.status_code == 200, stored.text
    digests = [hashlib.sha256(data).hexdigest() for data in small]
    assert [blob["digest"] for blob in stored.json()["blobs"]] == digests
    assert all(
        api.get(f"/v1/blobs/{digest}").content == data for digest, data in zip(digests, small, strict=True)
    )

    large = bytes(range(256)) * 400  # over the 64 KiB a query answers inline
    large_digest = api.http.put("/v1/blobs", content=large).json()["digest"]
    absent = "ab" * 32
    reply = api.http.post(
        "/v1/blobs/query", json={"digests": [*digests, "0x" + large_digest.upper(), absent]}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert {d: base64.b64decode(b) for d, b in body["blobs"].items()} == dict(
        zip(digests, small, strict=True)
    )
    assert (body["missing"], body["deferred"]) == ([absent], [large_digest])

    client = MarketplaceApi(api.url)
    try:
        assert client.download_many([*digests, large_digest, absent]) == {
            **dict(zip(digests, small, strict=True)), large_digest: large,
        }  # fmt: skip
        assert [ref.digest for ref in client.upload_many(small)] == digests
    finally:
        client.close()


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/blobs/batch", {"blobs": []}, 422, "body 'blobs'"),
        ("/v1/blobs/batch", {"blobs": ["not base64!"]}, 422, "ase64"),
        ("/v1/blobs/batch", {"blobs": [base64.b64encode(b"x" * (BLOB_LIMIT + 1)).decode()]}, 413, "limit"),
        ("/v1/blobs/query", {"digests": ["xyz"]}, 400, "64 hex characters"),
        ("/v1/blobs/query", {"digests": []}, 422, "body 'digests'"),
        ("/v1/blobs/query", {"digests": ["ab" * 32] * 257}, 422, "body 'digests'"),
    ],
)
def test_bad_blob_batches_are_refused_with_a_message(
    api: Api, path: str, body: dict[str, Any], status: int, message: str
) -> None:
    reply = api.http.post(path, json=body)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["detail"]


def test_a_large_blob_streams_both_ways(api: Api) -> None:
    data = bytes(range(256)) * 1000  # 256,000 bytes: close to the limit, many chunks

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for start in range(0, len(data), 10_000):
            yield data[start : start + 10_000]

    stored = api.http.put("/v1/blobs", content=chunks())
    assert stored.status_code in (200, 201) and stored.json()["size"] == len(data)
    with api.http.stream("GET", f"/v1/blobs/{stored.json()['digest']}") as response:
        assert b"".join(response.iter_bytes()) == data


def test_blob_digest_mismatch_stores_nothing(api: Api) -> None:
    data, claimed = b"the real bytes", hashlib.sha256(b"other bytes").hexdigest()
    before = blob_files(api)
    refused = api.http.put("/v1/blobs", params={"sha256": claimed}, content=data)
    assert refused.status_code == 400
    actual = hashlib.sha256(data).hexdigest()
    assert claimed in refused.json()["detail"] and actual in refused.json()["detail"]
    assert (refused.json()["expected"], refused.json()["actual"]) == (claimed, actual)
    assert api.get(f"/v1/blobs/{actual}").status_code == 404
    assert blob_files(api) == before


def test_blob_over_the_limit_is_refused_and_reading_stops(api: Api) -> None:
    before = blob_files(api)
    refused = api.http.put("/v1/blobs", content=b"x" * (BLOB_LIMIT + 1))  # announced by Content-Length
    assert refused.status_code == 413
    assert f"limit of {BLOB_LIMIT} bytes" in refused.json()["detail"]
    assert api.http.put("/v1/blobs", content=b"x" * BLOB_LIMIT).status_code == 201  # exactly the limit

    sent: list[int] = []

    def endless() -> Iterator[bytes]:  # chunked: the server only finds out by counting
        for _ in range(2000):
            sent.append(65_536)
            yield b"y" * 65_536

    with httpx.Client(base_url=api.url, timeout=20) as fresh:
        refused = fresh.put("/v1/blobs", content=endless())
    assert refused.status_code == 413
    assert sum(sent) < 64 * BLOB_LIMIT  # it stopped reading long before the 128 MiB were sent
    assert len(blob_files(api)) == len(before) + 1


def test_concurrent_uploads_of_the_same_blob(api: Api) -> None:
    data = b"concurrent" * 20_000
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(8)

    def upload() -> None:
        with httpx.Client(base_url=api.url, timeout=20) as http:
            barrier.wait()
            answers.append(http.put("/v1/blobs", content=data))

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} <= {200, 201} and len(answers) == 8
    assert len({a.text for a in answers}) == 1
    digest = answers[0].json()["digest"]
    assert api.get(f"/v1/blobs/{digest}").content == data
    assert [p for p in blob_files(api) if p.name == digest] == [
        api.blob_root / digest[:2] / digest[2:4] / digest
    ]
    assert not list((api.blob_root / ".partial").iterdir())


def test_an_upload_cut_off_midway_leaves_nothing(api: Api) -> None:
    data = b"z" * 200_000
    before = blob_files(api)
    port = int(api.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            b"PUT /v1/blobs HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n"
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data[:120_000]
        )
        deadline = time.monotonic() + 5  # wait until the server has the first bytes on disk
        while not list((api.blob_root / ".partial").iterdir()):
            assert time.monotonic() < deadline, "the upload never started"
            time.sleep(0.01)
        assert api.get(f"/v1/blobs/{hashlib.sha256(data).hexdigest()}").status_code == 404
    deadline = time.monotonic() + 5  # the client hung up: the partial upload must vanish
    while list((api.blob_root / ".partial").iterdir()):
        assert time.monotonic() < deadline, "the partial upload was left behind"
        time.sleep(0.01)
    assert blob_files(api) == before


# ── bad input ──


JOBS_CURSOR = encode_cursor("jobs", 5)
PROVIDERS_CURSOR = encode_cursor("providers", UNKNOWN_ADDRESS)
DIGEST = hashlib.sha256(b"never stored").hexdigest()
MIXED_CASE_BAD_CHECKSUM = "0x" + "aB" * 20

BAD_REQUESTS = [
    # (method, path, query, headers, body, status, message)
    ("GET", "/v1/jobs", {"requester": "0x12"}, {}, None, 422, "'0x12' is not an address"),
    ("GET", "/v1/jobs", {"provider": "alice"}, {}, None, 422, "'alice' is not an address"),
    ("GET", "/v1/jobs", {"token": "0x" + "g" * 40}, {}, None, 422, "is not an address"),
    ("GET", "/v1/jobs", {"requester": MIXED_CASE_BAD_CHECKSUM}, {}, None, 422, "EIP-55 checksum"),
    ("GET", "/v1/providers/0x1234", None, {}, None, 422, "'0x1234' is not an address"),
    (
        "GET",
        f"/v1/providers/{UNKNOWN_ADDRESS.lower()}",
        None,
        {},
        None,
        404,
        f"no provider {UNKNOWN_ADDRESS}",
    ),
    ("GET", "/v1/jobs/123", None, {}, None, 404, "no job 123"),
    ("GET", "/v1/jobs/0", None, {}, None, 404, "no job 0"),
    ("GET", "/v1/jobs/-1", None, {}, None, 422, "'job_id': Input should be greater than or equal to 0"),
    ("GET", "/v1/jobs/abc", None, {}, None, 422, "'job_id': Input should be a valid integer"),
    ("GET", "/v1/jobs/99999999999999999999999", None, {}, None, 422, "'job_id': Input should be less than"),
    ("GET", "/v1/jobs/9223372036854775808", None, {}, None, 422, "'job_id': Input should be less than"),
    ("GET", "/v1/jobs", {"limit": "0"}, {}, None, 422, "'limit': Input should be greater than or equal to 1"),
    (
        "GET",
        "/v1/jobs",
        {"limit": "-5"},
        {},
        None,
        422,
        "'limit': Input should be greater than or equal to 1",
    ),
    (
        "GET",
        "/v1/jobs",
        {"limit": "201"},
        {},
        None,
        422,
        "'limit': Input should be less than or equal to 200",
    ),
    ("GET", "/v1/jobs", {"limit": "ten"}, {}, None, 422, "'limit': Input should be a valid integer"),
    ("GET", "/v1/providers", {"limit": "0"}, {}, None, 422, "'limit'"),
    ("GET", "/v1/jobs", {"status": "done"}, {}, None, 422, "'status': Input should be 'open', 'running'"),
    ("GET", "/v1/jobs", {"cursor": "garbage!"}, {}, None, 400, "bad cursor 'garbage!'"),
    ("GET", "/v1/jobs", {"cursor": PROVIDERS_CURSOR}, {}, None, 400, "bad cursor"),
    ("GET", "/v1/jobs", {"cursor": encode_cursor("jobs", "-3")}, {}, None, 400, "bad cursor"),
    ("GET", "/v1/jobs", {"cursor": encode_cursor("jobs", 2**70)}, {}, None, 400, "bad cursor"),
    ("GET", "/v1/providers", {"cursor": JOBS_CURSOR}, {}, None, 400, "page of providers"),
    ("GET", "/v1/blobs/xyz", None, {}, None, 400, "64 hex characters, 'xyz' has 3"),
    ("GET", "/v1/blobs/" + "q" * 64, None, {}, None, 400, "is hex"),
    ("GET", "/v1/blobs/" + DIGEST + "0", None, {}, None, 400, "has 65"),
    ("GET", "/v1/blobs/" + DIGEST, None, {}, None, 404, f"no blob {DIGEST}"),
    ("PUT", "/v1/blobs", {"sha256": "nothex"}, {}, b"x", 400, "64 hex characters"),
    ("PUT", "/v1/blobs", {"sha256": DIGEST}, {}, b"x", 400, f"not the announced {DIGEST}"),
    ("PUT", "/v1/blobs", None, {}, b"x" * (BLOB_LIMIT + 1), 413, "larger than the limit"),
    (
        "GET",
        "/v1/events",
        None,
        {"Last-Event-ID": "abc"},
        None,
        400,
        "Last-Event-ID 'abc' is not an event stream id",
    ),
    ("GET", "/v1/events", {"after": "-1"}, {}, None, 422, "'after'"),
    ("GET", "/v1/events", {"max_events": "0"}, {}, None, 422, "'max_events'"),
    ("GET", "/v1/events", {"timeout": "-1"}, {}, None, 422, "'timeout'"),
    ("GET", "/v1/nothing-here", None, {}, None, 404, "Not Found"),
    ("DELETE", "/v1/jobs/1", None, {}, None, 405, "Method Not Allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "body", "status", "message"),
    BAD_REQUESTS,
    ids=[f"{row[0]} {row[1][:40]} {row[2] or row[3] or ''} -> {row[5]}" for row in BAD_REQUESTS],
)
def test_bad_input_gets_a_4xx_saying_what_is_wrong(
    api: Api, method: str, path: str, query: dict[str, str] | None, headers: dict[str, str],
    body: bytes | None, status: int, message: str,
) -> None:  # fmt: skip
    response = api.http.request(method, path, params=query, headers=headers, content=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["detail"]


class BrokenStore(FilesystemBlobStore):
    def open(self, digest: str) -> BlobReader:
        raise RuntimeError("disk on fire")


def test_an_unexpected_error_is_logged_and_answered_as_json(
    market: IndexedMarket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(market.engine, BrokenStore(tmp_path))
    with serve(app) as url:
        response = httpx.get(f"{url}/v1/blobs/{DIGEST}")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error (RuntimeError); it has been logged"}
    assert any(
        "disk on fire" in str(record.exc_info) for record in caplog.records if record.name == "cmarket.api"
    )


texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
ROUTES = [
    "/v1/jobs?requester={}", "/v1/jobs?provider={}", "/v1/jobs?token={}", "/v1/jobs?status={}",
    "/v1/jobs?cursor={}", "/v1/jobs?limit={}", "/v1/providers?cursor={}", "/v1/providers/{}",
    "/v1/jobs/{}", "/v1/blobs/{}", "/v1/events?after={}&timeout=0.01",
    "/v1/events?max_events={}&timeout=0.01",
]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(route=st.sampled_from(ROUTES), value=texts)
def test_no_input_makes_the_api_fail(api: Api, route: str, value: str) -> None:
    response = api.get(route.format(quote(value, safe="")))
    assert response.status_code < 500, (route, value, response.text)


# ── the same answers from PostgreSQL ──


def test_postgresql_gives_the_same_answers(api: Api, market: IndexedMarket, tmp_path: Path) -> None:
    """Indexes the same chain into PostgreSQL and compares every read route's JSON with SQLite's."""
    from tests.postgres import PostgresServer, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"PostgreSQL not available: {reason}")
    with PostgresServer() as server:
        engine = make_engine(server.database("api"))
        migrate(engine)
        index_to_head(engine, market.node, market.world.deployment.market)
        with serve(make_app(engine, tmp_path)) as url, httpx.Client(base_url=url, timeout=20) as http:
            paths = [
                "/health", "/v1/stats", "/v1/jobs?limit=200",
                *(f"/v1/jobs/{job_id}" for job_id in stored_job_ids(market)),
                *(f"/v1/jobs?status={status}" for status in STATUSES),
                f"/v1/jobs?provider={market.names['mallory']}&token={market.tusd}",
                *(f"/v1/providers/{market.names[name]}" for name in ("alice", "bob", "mallory")),
            ]  # fmt: skip
            for path in paths:
                assert http.get(path).json() == api.get(path).json(), path
            events = {"after": 0, "max_events": 40}
            assert http.get("/v1/events", params=events).text == api.get("/v1/events", params=events).text
            providers = http.get("/v1/providers").json()["providers"]
            assert sorted(providers, key=lambda p: p["address"]) == api.ok("/v1/providers")["providers"]
        engine.dispose()


# ── the response cache ──


def test_the_cache_keeps_answers_of_the_newest_checkpoint_only() -> None:
    cache = ResponseCache(max_entries=2)
    assert cache.get("a", (1, "0x1")) is None
    cache.put("a", (1, "0x1"), b"A1")
    assert cache.get("a", (1, "0x1")) == b"A1"
    assert cache.get("a", (2, "0x2")) is None  # the index moved: everything is forgotten
    cache.put("a", (1, "0x1"), b"stale")  # a read that started before the move is not kept
    assert cache.get("a", (2, "0x2")) is None
    for key in ("a", "b", "c"):
        cache.put(key, (2, "0x2"), key.encode())
    assert [cache.get(key, (2, "0x2")) for key in ("a", "b", "c")] == [None, b"b", b"c"]  # LRU of 2


def test_a_read_torn_by_an_indexer_commit_is_not_cached_checkpoints_from_the_database() -> None:
    cache = ResponseCache()
    # The checkpoint as each fetch sees it before and after its read: the indexer commits during the first.
    checkpoints = iter([(1, "0x1"), (2, "0x2"), (2, "0x2"), (2, "0x2"), (2, "0x2")])
    reads: list[int] = []

    def read(_connection: Any) -> schemas.Blob:
        reads.append(1)
        return schemas.Blob(digest="d", cid="c", size=len(reads))

    connection: Any = None
    with patch("marketplace.api.cache.read_checkpoint", lambda _connection: next(checkpoints)):
        first = cache.fetch(connection, "k", read)
        second = cache.fetch(connection, "k", read)
        third = cache.fetch(connection, "k", read)
    assert json.loads(first)["size"] == 1
    assert json.loads(second)["size"] == 2  # the first read was not kept: it straddled a commit
    assert third == second and len(reads) == 2


def test_a_read_torn_by_a_commit_of_the_indexer_in_process_is_not_cached(market: IndexedMarket) -> None:
    status = IndexerStatus()
    status.stepped((1, "0x1"))
    reads = CachedReads(Database(market.engine), ResponseCache(), status)
    calls: list[int] = []

    def read(_connection: Any) -> schemas.Blob:
        calls.append(1)
        if len(calls) == 1:  # the indexer commits while the first read runs
            status.changing()
            status.changed((2, "0x2"))
        return schemas.Blob(digest="d", cid="c", size=len(calls))

    async def three_reads() -> list[bytes]:
        return [await reads.json("k", read) for _ in range(3)]

    first, second, third = asyncio.run(three_reads())
    assert json.loads(first)["size"] == 1
    assert json.loads(second)["size"] == 2  # the first read was not kept
    assert third == second and len(calls) == 2


def test_the_indexer_says_a_commit_is_coming_before_it_begins(market: IndexedMarket, tmp_path: Path) -> None:
    running = market.unfinished["running"]
    with market_copy(market, tmp_path) as (engine, indexer):
        indexer.status.stepped(indexer.step().checkpoint)
        before = indexer.status.revision()
        at_commit: list[Revision] = []
        event.listen(engine, "commit", lambda _connection: at_commit.append(indexer.status.revision()))
        market.demo.bob.commit(
            running, commitment(running, market.demo.bob.address, b"\x07" * 32, b"\x08" * 32)
        )
        while not (result := indexer.step()).caught_up:
            pass
        after = indexer.status.revision()
    assert at_commit and all(revision.checkpoint is None for revision in at_commit)
    assert after.checkpoint == result.checkpoint != before.checkpoint
    assert after.number > before.number


# ── GET /v1/jobs/{id} before the framework ──


async def asgi_request(app: Any, method: str, path: str) -> tuple[int | None, dict[bytes, bytes], bytes, Any]:
    """Status, headers and body `app` answers (None if it sent nothing), and the scope it saw."""
    scope = {"type": "http", "method": method, "path": path, "headers": [], "query_string": b""}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if not sent:
        return None, {}, b"", scope
    return sent[0]["status"], dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:]), scope


def test_the_job_fast_path_answers_stored_jobs_and_hands_everything_else_on(market: IndexedMarket) -> None:
    database = Database(market.engine)
    reads = CachedReads(database, ResponseCache(0), None)
    handed_on: list[str] = []

    async def app(scope: Any, _receive: Any, _send: Any) -> None:
        handed_on.append(f"{scope['method']} {scope['path']}")

    fast = JobDetailFastPath(app, reads)
    stored = database.call(queries.job_detail, job_id=3)
    status, headers, body, scope = asyncio.run(asgi_request(fast, "GET", "/v1/jobs/3"))
    assert (status, headers[b"content-type"], int(headers[b"content-length"])) == (
        200,
        b"application/json",
        len(body),
    )
    assert json.loads(body) == json.loads(stored.model_dump_json())
    assert scope["route"].path == JOB_ROUTE  # what the latency metric labels the request with
    assert asyncio.run(asgi_request(fast, "GET", "/v1/jobs/003"))[2] == body
    assert handed_on == []

    passed = [
        ("GET", "/v1/jobs/999999"),  # not stored: the route answers the 404
        ("GET", "/v1/jobs/9223372036854775808"),  # beyond the ids SQL stores
        ("GET", "/v1/jobs/abc"),
        ("GET", "/v1/jobs/-3"),
        ("GET", "/v1/jobs/3/"),
        ("GET", "/v1/jobs/\u0663"),  # a digit, but not an ASCII one
        ("HEAD", "/v1/jobs/3"),
        ("DELETE", "/v1/jobs/3"),
        ("GET", "/v1/jobs"),
    ]
    for method, path in passed:
        assert asyncio.run(asgi_request(fast, method, path))[0] is None
    assert handed_on == [f"{method} {path}" for method, path in passed]
    database.close()
