"""`cmarket provider start`: the provider daemon."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import AccountOptions, ApiOption, api_url, fail, parse_amount, stop_on_signals, with_account

app = typer.Typer(help="Provider commands: run the daemon that claims, runs and settles jobs.")


@app.command("start")
@with_account("provider", default_account=4)
def start(
    account: AccountOptions,
    api: ApiOption = None,
    state: Annotated[Path, typer.Option(help="directory of the provider's state and results")] = Path(
        "provider-state"
    ),
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (ray start --head prints it) (default: local Ray)")
    ] = None,
    ray_cpus: Annotated[int | None, typer.Option(min=1, help="CPUs of a local Ray")] = None,
    workloads: Annotated[
        str | None, typer.Option(help='comma-separated built-in names and "wasm" (default: all)')
    ] = None,
    min_price_per_fuel: Annotated[int, typer.Option(min=0, help="least reward per fuel unit, wei")] = 0,
    collateral_budget: Annotated[
        str | None, typer.Option(help="most collateral locked at once, in stake-token units")
    ] = None,
    max_concurrent: Annotated[int, typer.Option(min=1, help="jobs held at once")] = 64,
    max_batch: Annotated[int, typer.Option(min=1, max=500, help="jobs per batch transaction")] = 100,
    stake: Annotated[str, typer.Option(help="free stake to keep at start-up, in stake-token units")] = "0",
    withdraw_threshold: Annotated[
        str, typer.Option(help="withdraw earnings above this, token units")
    ] = "0.01",
    max_window: Annotated[
        int | None,
        typer.Option(min=1, help="refuse jobs with a claim, run or reveal window longer than this, seconds"),
    ] = None,
    runner_up_delay: Annotated[
        float,
        typer.Option(
            min=0,
            max=600,
            help="seconds to leave a job to the providers ahead in its draw, when they may claim it too",
        ),
    ] = 2.0,
    poll_interval: Annotated[float, typer.Option(min=0.01, max=10, help="seconds between idle rounds")] = 0.1,
    drain_timeout: Annotated[
        float, typer.Option(min=0, help="seconds SIGTERM waits for in-flight work")
    ] = 30.0,
    metrics_port: Annotated[int | None, typer.Option(min=0, max=65535, help="serve /metrics here")] = None,
    finality_depth: Annotated[
        int,
        typer.Option(
            min=1, max=1024, help="blocks after which a step is final (reorgs are followed until then)"
        ),
    ] = 8,
    byzantine: Annotated[
        str | None, typer.Option(help="dishonest mode for tests: wrong-result, no-reveal or copy")
    ] = None,
    log_format: Annotated[str, typer.Option(help="json or text")] = "json",
) -> None:
    """Run a provider: register and stake if needed, then claim, run and settle jobs until Ctrl-C."""
    import logging

    from pydantic import ValidationError

    from provider import logs
    from provider.config import Byzantine, ProviderConfig
    from provider.daemon import DaemonError, ProviderDaemon
    from provider.state import StateError

    if log_format not in ("json", "text"):
        fail(f"--log-format must be json or text, not {log_format!r}")
    if byzantine is not None and byzantine not in {mode.value for mode in Byzantine}:
        fail(f"--byzantine must be one of {', '.join(m.value for m in Byzantine)}, not {byzantine!r}")
    actor = account.actor()
    logs.configure(logging.INFO, json_lines=log_format == "json")
    names = ("max_claim_window", "max_run_timeout", "max_reveal_window")
    windows: dict[str, Any] = {} if max_window is None else dict.fromkeys(names, max_window)
    try:
        config = ProviderConfig(
            rpc_url=account.rpc_url, market=actor.market.address, api_url=api_url(api), state_path=state,
            ray_address=ray_address, ray_cpus=ray_cpus, workloads=workloads,
            min_price_per_fuel=min_price_per_fuel,
            collateral_budget=parse_amount(collateral_budget, allow_zero=True) if collateral_budget else None,
            max_concurrent_jobs=max_concurrent, max_batch=max_batch,
            stake=parse_amount(stake, allow_zero=True),
            withdraw_threshold=parse_amount(withdraw_threshold, allow_zero=True),
            runner_up_delay=runner_up_delay, poll_interval=poll_interval, drain_timeout=drain_timeout,
            **windows,
            metrics_port=metrics_port, byzantine=byzantine, finality_depth=finality_depth,
        )  # fmt: skip
    except ValidationError as exc:
        fail(f"invalid provider settings: {exc}")
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        daemon = ProviderDaemon(config, actor.sender.account)
        daemon.start()
    except (DaemonError, StateError) as exc:
        fail(str(exc))
    stop_on_signals(stop)  # again: connecting to Ray installed Ray's own SIGTERM handler, which aborts
    daemon.run(stop)
