"""The market the dashboard tests look at: a devnet with jobs in every state, indexed live, served.

The scripted demo story (`marketplace.cli.demo.scripted`: paid, slashed, failed, cancelled and
batched jobs) plus a job left past its commit deadline, a running job and an open job; the demo's
specs and results are uploaded to the blob store, as a requester and its providers would. An
indexer follows the chain in a thread for the whole session, so a job posted by a test reaches the
dashboard live.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from rich.console import Console
from sqlalchemy import Engine

from marketplace.api.app import create_app
from marketplace.api.settings import ApiSettings
from marketplace.chain.bootstrap import DevnetMarket, setup_devnet_market
from marketplace.chain.devnet import Devnet
from marketplace.chain.rpc import RpcClient
from marketplace.cli.demo.scripted import COLLATERAL, ETHER, Demo, iterated_sha256
from marketplace.indexer.sync import Indexer
from marketplace.protocol.hashing import canonical_json, sha256
from marketplace.protocol.views import JobParams
from marketplace.store.blobs import FilesystemBlobStore
from marketplace.store.database import make_engine, migrate
from tests.services import post_unfinished_jobs, serve

__all__ = ["COLLATERAL", "ETHER", "World", "build_world", "make_app", "serve"]


@dataclass
class World:
    node: Devnet
    chain: DevnetMarket
    demo: Demo
    engine: Engine
    db_path: Path
    blobs: FilesystemBlobStore
    unfinished: dict[str, int]  # "revealing" / "running" / "open" -> job id
    names: dict[str, str] = field(default_factory=dict)  # actor name -> address
    posted: list[int] = field(default_factory=list)  # jobs the tests posted

    def post_job(self, label: str, replicas: int = 1) -> int:
        """A new job from the demo's requester; returns its id once mined."""
        params = JobParams(
            spec_hash=sha256(f"test:{label}".encode()), reward_per_replica=ETHER // 50, replicas=replicas,
            collateral_per_replica=COLLATERAL, claim_window=3600, run_timeout=3600, reveal_window=600,
        )  # fmt: skip
        job_id, _ = self.demo.requester.post_job(params)
        self.posted.append(job_id)
        return job_id

    def post_spec(self, spec: dict[str, object]) -> int:
        """A new single-replica job for `spec` (whose canonical bytes the caller may or may not have
        stored; a spec no provider would accept is fine: the dashboard shows whatever was posted)."""
        params = JobParams(
            spec_hash=sha256(canonical_json(spec)), reward_per_replica=ETHER // 50, replicas=1,
            collateral_per_replica=COLLATERAL, claim_window=3600, run_timeout=3600, reveal_window=600,
        )  # fmt: skip
        job_id, _ = self.demo.requester.post_job(params)
        self.posted.append(job_id)
        return job_id

    def job_count(self) -> int:
        return self.chain.market.job_count()


def upload_demo_data(demo: Demo, blobs: FilesystemBlobStore) -> None:
    """Each demo job's spec (canonical JSON) and, once settled, its result bytes."""
    for job in demo.jobs:
        blobs.put([canonical_json(job.spec)])
        if job.result_hash:
            args = job.spec["args"]
            assert isinstance(args, dict)
            blobs.put([iterated_sha256(str(args["seed"]), int(args["rounds"]))])


@contextmanager
def live_indexer(engine: Engine, rpc_url: str, market: str) -> Iterator[Indexer]:
    """An indexer following the chain in a thread until the block exits; caught up on entry."""
    rpc = RpcClient(rpc_url)
    indexer = Indexer(engine, rpc, market, finality_depth=5)
    indexer.initialize()
    while not indexer.step().caught_up:
        pass
    stop = threading.Event()
    thread = threading.Thread(
        target=indexer.run, args=(stop,), kwargs={"poll_interval": 0.1}, name="dashboard-indexer", daemon=True
    )
    thread.start()
    try:
        yield indexer
    finally:
        stop.set()
        thread.join(timeout=10)
        rpc.close()


@contextmanager
def build_world(directory: Path) -> Iterator[World]:
    db_path = directory / "market.db"
    with Devnet() as node:
        chain = setup_devnet_market(node)
        demo = Demo(Console(quiet=True), node, chain)
        demo.set_up()
        demo.run()
        unfinished = post_unfinished_jobs(demo, node, claim_window=3600)
        engine = make_engine(f"sqlite:///{db_path}")
        migrate(engine)
        blobs = FilesystemBlobStore(directory / "blobs")
        upload_demo_data(demo, blobs)
        names = {actor.name: str(actor.address) for actor in demo.everyone()}
        with live_indexer(engine, node.rpc_url, chain.deployment.market):
            yield World(node, chain, demo, engine, db_path, blobs, unfinished, names)
        engine.dispose()


def make_app(engine: Engine, blobs: FilesystemBlobStore) -> FastAPI:
    return create_app(engine, blobs, ApiSettings(stream_poll_seconds=0.05, stream_keepalive_seconds=5.0))
