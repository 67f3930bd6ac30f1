"""`cmarket demo`: a whole market on a fresh devnet, summarized."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer

from ..common import console, fail


def demo(
    chain: Annotated[str, typer.Option(help="anvil or ganache")] = "anvil",
    jobs: Annotated[
        int, typer.Option(min=1, max=1000, envvar="DEMO_JOBS", help="jobs the requester posts")
    ] = 24,
    byzantine: Annotated[str, typer.Option(help="mallory's dishonest mode")] = "wrong-result",
    keep_running: Annotated[bool, typer.Option(help="keep the market up after the summary")] = False,
    scripted: Annotated[
        bool, typer.Option(help="the protocol alone: every role scripted in this process (no Ray)")
    ] = False,
) -> None:
    """Run a whole market on a fresh devnet (devnet, marketplace, Ray, three providers) and summarize it."""
    from ...chain.devnet import ChainKind
    from ...protocol.errors import MarketError
    from .live import run_live_demo
    from .scripted import run_scripted_demo

    try:
        kind = ChainKind(chain)
    except ValueError:
        fail(f"--chain must be anvil or ganache, not {chain!r}")
    if byzantine not in ("wrong-result", "no-reveal", "copy"):
        fail(f"--byzantine must be wrong-result, no-reveal or copy, not {byzantine!r}")
    if scripted:
        run_scripted_demo(console, kind)
        return
    stop = threading.Event()

    def interrupt(*_: Any) -> None:
        stop.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    try:
        outcomes = run_live_demo(console, kind, jobs=jobs, byzantine=byzantine, keep_running=keep_running)
    except KeyboardInterrupt:
        fail("interrupted; everything was stopped", code=130)
    except MarketError as exc:
        fail(str(exc))
    if sum(outcomes.values()) != jobs or set(outcomes) - {"completed", "failed", "cancelled"}:
        fail(f"not every job settled: {outcomes}")
