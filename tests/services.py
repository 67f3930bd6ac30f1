"""Shared by the API and dashboard tests: an app served by uvicorn in a thread, and the jobs the
scripted demo leaves unfinished on purpose (so every status, not only the final ones, is seen)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from marketplace.chain.devnet import Devnet, free_port
from marketplace.cli.demo.scripted import COLLATERAL, ETHER, Demo
from marketplace.protocol.hashing import commitment, sha256
from marketplace.protocol.views import JobParams


@contextmanager
def serve(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """Runs `app` under uvicorn on a loopback port (a free one by default), in a thread; yields
    its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def post_unfinished_jobs(demo: Demo, node: Devnet, *, claim_window: int) -> dict[str, int]:
    """A job past its commit deadline with a commit missing, a running job, an open job (claimable
    for `claim_window` seconds): "revealing" / "running" / "open" -> job id."""

    def params(label: str, replicas: int, run_timeout: int) -> JobParams:
        return JobParams(
            spec_hash=sha256(f"test:{label}".encode()), reward_per_replica=ETHER // 100, replicas=replicas,
            collateral_per_replica=COLLATERAL, claim_window=claim_window, run_timeout=run_timeout,
            reveal_window=600,
        )  # fmt: skip

    late, _ = demo.requester.post_job(params("late", 2, 600))
    demo.wait_for_seats([late], [demo.alice, demo.bob])
    demo.alice.claim(late)
    demo.bob.claim(late)
    demo.alice.commit(late, commitment(late, demo.alice.address, b"\x01" * 32, b"\x02" * 32))
    node.increase_time(601)  # bob never committed: the job is Revealing, though no event says so
    running, _ = demo.requester.post_job(params("running", 2, 86_400))
    demo.wait_for_seats([running], [demo.alice, demo.bob])
    demo.alice.claim(running)
    demo.bob.claim(running)
    open_job, _ = demo.requester.post_job(params("open", 1, 600))
    return {"revealing": late, "running": running, "open": open_job}
