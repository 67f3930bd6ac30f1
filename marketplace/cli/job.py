"""`cmarket job ...`: the requester's commands: submit jobs, follow them, fetch verified results."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .common import (
    AccountOptions,
    ApiOption,
    JsonOption,
    api_url,
    console,
    errors_console,
    fail,
    parse_amount,
    token_decimals,
    with_account,
)

if TYPE_CHECKING:
    from ..client import Requester

app = typer.Typer(help="Requester commands: submit jobs, follow them, fetch verified results.")
with_requester = with_account("requester", default_account=2)


def requester(account: AccountOptions, api: str | None) -> Requester:
    from ..client import MarketplaceApi, Requester

    return Requester(MarketplaceApi(api_url(api)), account.actor())


@app.command("submit")
@with_requester
def submit(
    account: AccountOptions,
    spec: Annotated[Path, typer.Option(help="job spec, a JSON file (workload, args, limits)")],
    reward: Annotated[str, typer.Option(help="reward per replica in token units, e.g. 0.01")],
    inputs: Annotated[list[Path] | None, typer.Option("--input", help="input file (repeatable)")] = None,
    replicas: Annotated[int, typer.Option(min=1, max=15)] = 1,
    token: Annotated[str, typer.Option(help="ETH or an allow-listed ERC-20 address")] = "ETH",
    collateral: Annotated[
        str | None,
        typer.Option(
            help="collateral per replica in stake-token units (default: the least the market accepts)"
        ),
    ] = None,
    claim_window: Annotated[int, typer.Option(min=1, help="seconds")] = 3600,
    run_timeout: Annotated[int, typer.Option(min=1, help="seconds")] = 3600,
    reveal_window: Annotated[int, typer.Option(min=1, help="seconds")] = 3600,
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a spec and its inputs, post the job, print its id."""
    from eth_utils import is_address

    from ..protocol.errors import MarketError
    from ..protocol.views import ETH

    try:
        document = json.loads(spec.read_text())
    except FileNotFoundError:
        fail(f"spec {spec} does not exist")
    except json.JSONDecodeError as exc:
        fail(f"spec {spec} is not JSON: {exc}")
    if not isinstance(document, dict) or "workload" not in document:
        fail(f"spec {spec} must be a JSON object with a 'workload'")
    blobs = []
    for path in inputs or []:
        try:
            blobs.append(path.read_bytes())
        except OSError as exc:
            fail(f"cannot read input {path}: {exc}")
    token_address = ETH if token.upper() == "ETH" else token
    if not is_address(token_address):
        fail(f"--token must be ETH or an address, not {token!r}")
    client = requester(account, api)
    decimals = token_decimals(client.market.w3, token_address)
    try:
        submitted = client.submit(
            document,
            blobs,
            reward_per_replica=parse_amount(reward, decimals),
            replicas=replicas,
            token=token_address,
            collateral_per_replica=None if collateral is None else parse_amount(collateral),
            claim_window=claim_window,
            run_timeout=run_timeout,
            reveal_window=reveal_window,
        )
    except MarketError as exc:
        fail(str(exc))
    if as_json:
        summary = {
            "job_id": submitted.job_id,
            "spec": submitted.spec.digest,
            "inputs": [ref.digest for ref in submitted.inputs],
            "tx_hash": submitted.transaction.tx_hash,
        }
        print(json.dumps(summary))
    else:
        console.print(f"job [bold]{submitted.job_id}[/] posted (spec {submitted.spec.digest[:16]}…)")


def _job_line(job: dict[str, Any]) -> str:
    return (
        f"job {job['id']}: [bold]{job['status']}[/]  claims {job['claims']}/{job['replicas']}"
        f"  commits {job['commits']}/{job['replicas']}  reveals {job['reveals']}/{job['replicas']}"
    )


@app.command("status")
def status(
    job_id: Annotated[int, typer.Argument(min=1)],
    api: ApiOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a job as the marketplace indexed it."""
    from ..client import ClientError, MarketplaceApi

    try:
        job = MarketplaceApi(api_url(api)).job(job_id)
    except ClientError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(job))
        return
    console.print(_job_line(job))
    for assignment in job.get("assignments", []):
        outcome = f" → {assignment['outcome']}" if assignment.get("outcome") else ""
        console.print(
            f"  slot {assignment['slot']}: {assignment['provider']} {assignment['status']}{outcome}"
        )
    if job.get("result_hash"):
        console.print(f"  result {job['result_hash']}")


@app.command("wait")
def wait(
    job_id: Annotated[int, typer.Argument(min=1)],
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds")] = 600.0,
    api: ApiOption = None,
) -> None:
    """Follow a job until it completes, fails or is cancelled (exit 1 unless it completed)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..client import ClientError, MarketplaceApi

    client = MarketplaceApi(api_url(api))
    steps = {"open": 0, "running": 1, "revealing": 2, "completed": 3, "failed": 3, "cancelled": 3}
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, transient=False
    ) as progress:
        task = progress.add_task(f"job {job_id}: waiting for the index", total=3)

        def update(job: dict[str, Any]) -> None:
            progress.update(task, completed=steps.get(job["status"], 0), description=_job_line(job))

        try:
            job = client.wait(job_id, timeout=timeout, on_update=update)
        except ClientError as exc:
            fail(str(exc))
    if job["status"] != "completed":
        raise typer.Exit(1)


@app.command("result")
@with_requester
def result(
    account: AccountOptions,
    job_id: Annotated[int, typer.Argument(min=1)],
    out: Annotated[Path | None, typer.Option(help="write the result here (default: stdout)")] = None,
    api: ApiOption = None,
) -> None:
    """Download a job's result and verify it against the result hash settled on-chain."""
    from ..protocol.errors import MarketError

    client = requester(account, api)
    try:
        data = client.result(job_id)
    except MarketError as exc:
        fail(str(exc))
    errors_console.print(
        f"result of job {job_id}: {len(data)} bytes, SHA-256 matches the on-chain result hash"
    )
    if out is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        out.write_bytes(data)


@app.command("cancel")
@with_requester
def cancel(
    account: AccountOptions,
    job_id: Annotated[int, typer.Argument(min=1)],
    api: ApiOption = None,
) -> None:
    """Cancel an open job (yours while unclaimed, or anyone's slot after its claim window)."""
    from ..protocol.errors import MarketError

    client = requester(account, api)
    try:
        client.cancel(job_id)
    except MarketError as exc:
        fail(str(exc))
    console.print(f"job {job_id} cancelled; its escrow is credited back to the requester")
