"""`cmarket deploy` and `cmarket devnet`: put a market on a chain, or start a local chain with one."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated

import typer

from .common import AccountOptions, console, fail, settings, stop_on_signals, with_account


@with_account("deployer", default_account=0, market=False)
def deploy(
    account: AccountOptions,
    chain_id: Annotated[
        int | None, typer.Option(help="refuse to deploy unless the RPC is this chain")
    ] = None,
    treasury: Annotated[str | None, typer.Option(help="fee recipient (default: deployer)")] = None,
    stake_token: Annotated[str, typer.Option(help="provider stake token, 0x0 for ETH")] = "0x" + "00" * 20,
    fee_bps: Annotated[int, typer.Option(min=0, max=1000, help="protocol fee in basis points")] = 100,
    unbonding_period: Annotated[
        int, typer.Option(min=0, help="seconds before unstaked ETH can leave")
    ] = 604800,
    doubling_period: Annotated[
        int,
        typer.Option(
            min=1, max=3600, help="seconds until a job's eligible providers double: about the block time"
        ),
    ] = 12,
    out: Annotated[Path | None, typer.Option(help="deployments directory (default: ./deployments)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object, nothing else")] = False,
) -> None:
    """Deploy ComputeMarket and write deployments/<chain_id>.json."""
    from eth_utils import is_address

    from ..chain.deploy import deploy_market
    from ..chain.sender import TxSender
    from ..protocol.errors import MarketError
    from .common import connect_checked

    for name, value in (("--treasury", treasury), ("--stake-token", stake_token)):
        if value is not None and not is_address(value):
            fail(f"{name} {value!r} is not an address")
    w3, actual_chain_id = connect_checked(account.rpc_url, chain_id)
    signer = account.signer(actual_chain_id)
    if int(w3.eth.get_balance(signer.address)) == 0:
        fail(f"deployer {signer.address} has no ETH on chain {actual_chain_id} to pay for gas")
    sender = TxSender(w3, signer, receipt_timeout=settings().receipt_timeout)
    try:
        deployment = deploy_market(
            sender,
            treasury=treasury,
            stake_token=stake_token,
            fee_bps=fee_bps,
            unbonding_period=unbonding_period,
            doubling_period=doubling_period,
        )
    except MarketError as exc:
        fail(f"deployment failed: {exc}")
    path = deployment.write(out or settings().deployments_dir)
    if as_json:
        print(json.dumps(deployment.to_json()))
    else:
        console.print(
            f"ComputeMarket deployed at [bold]{deployment.market}[/] on chain {deployment.chain_id}"
        )
        console.print(f"block {deployment.block}, gas {deployment.gas_used:,}; recorded in {path}")


def devnet(
    chain: Annotated[str, typer.Option(help="anvil or ganache")] = "anvil",
    port: Annotated[int, typer.Option(help="loopback port; 0 picks a free one")] = 8545,
    out: Annotated[Path | None, typer.Option(help="deployments directory (default: ./deployments)")] = None,
) -> None:
    """Start a local devnet, deploy the market and a test token, and run until Ctrl-C."""
    from rich.table import Table

    from ..chain.bootstrap import setup_devnet_market
    from ..chain.devnet import ChainKind, Devnet, port_in_use

    try:
        kind = ChainKind(chain)
    except ValueError:
        fail(f"--chain must be anvil or ganache, not {chain!r}")
    if port and port_in_use(port):
        fail(f"port {port} is already in use: pass --port 0 to pick a free one")
    node = Devnet(kind, port=port or None)
    with console.status(f"starting {kind} ..."):
        node.start()
    try:
        with console.status("deploying ComputeMarket ..."):
            world = setup_devnet_market(node)
        path = world.deployment.write(out or settings().deployments_dir)
        table = Table(title="Funded accounts (well-known devnet keys: never use them on a real chain)")
        table.add_column("#", justify="right")
        table.add_column("address")
        table.add_column("private key")
        table.add_column("role")
        roles = {0: "deployer, owner", 1: "treasury"}
        for index, funded in enumerate(node.accounts):
            table.add_row(str(index), funded.address, "0x" + funded.key.hex(), roles.get(index, ""))
        console.print(table)
        console.print(f"RPC        [bold]{node.rpc_url}[/]  (chain id {node.chain_id}, {kind})")
        console.print(f"market     [bold]{world.deployment.market}[/]  (recorded in {path})")
        console.print(f"test token [bold]{world.token}[/]  (TUSD, allow-listed, anyone can mint)")
        console.print("Press Ctrl-C to stop.")
        stop = threading.Event()
        stop_on_signals(stop)
        while not stop.wait(0.5):
            if not node.running:
                fail(f"{kind} exited unexpectedly; see {node.log_path}")
    finally:
        node.close()
        console.print(f"{kind} stopped.")
