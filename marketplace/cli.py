"""`cmarket`: the command line. Heavy imports happen inside commands so `--help` starts fast."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

    from .config import Settings

app = typer.Typer(
    name="cmarket",
    help="ComputeMarket: a blockchain-settled compute marketplace.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
errors_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    errors_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def settings() -> Settings:
    from .config import Settings

    return Settings()


def connect_checked(rpc_url: str, expected_chain_id: int | None, timeout: float) -> tuple[Web3, int]:
    """A Web3 for `rpc_url`, with a clear error if nothing answers there or it is the wrong chain."""
    from .chain.deploy import connect

    w3 = connect(rpc_url, timeout=timeout)
    try:
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:
        fail(f"cannot reach an Ethereum JSON-RPC endpoint at {rpc_url}: {exc.__class__.__name__}: {exc}")
    if expected_chain_id is not None and chain_id != expected_chain_id:
        fail(f"{rpc_url} is chain {chain_id}, not the expected chain {expected_chain_id}")
    return w3, chain_id


def signing_account(
    key: str | None, keystore: Path | None, password: str | None, chain_id: int
) -> LocalAccount:
    from .chain.devnet import DEVNET_CHAIN_IDS, devnet_accounts
    from .keys import BadKey, from_hex, from_keystore

    try:
        if key and keystore:
            fail("pass either --key or --keystore, not both")
        if key:
            return from_hex(key)
        if keystore:
            if password is None:
                password = typer.prompt(f"password for {keystore}", hide_input=True)
            return from_keystore(keystore, password)
    except BadKey as exc:
        fail(str(exc))
    if chain_id in DEVNET_CHAIN_IDS:
        return devnet_accounts()[0]
    fail(f"chain {chain_id} is not a devnet: pass --key HEX or --keystore FILE to sign")


@app.command()
def deploy(
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC URL [default: $CMARKET_RPC_URL]")] = None,
    key: Annotated[str | None, typer.Option(help="deployer private key, hex")] = None,
    keystore: Annotated[Path | None, typer.Option(help="deployer eth-account keystore file")] = None,
    chain_id: Annotated[
        int | None, typer.Option(help="refuse to deploy unless the RPC is this chain")
    ] = None,
    treasury: Annotated[str | None, typer.Option(help="fee recipient [default: deployer]")] = None,
    stake_token: Annotated[str, typer.Option(help="provider stake token, 0x0 for ETH")] = "0x" + "00" * 20,
    fee_bps: Annotated[int, typer.Option(min=0, max=1000, help="protocol fee in basis points")] = 100,
    unbonding_period: Annotated[
        int, typer.Option(min=0, help="seconds before unstaked ETH can leave")
    ] = 604800,
    out: Annotated[Path | None, typer.Option(help="deployments directory [default: ./deployments]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object, nothing else")] = False,
) -> None:
    """Deploy ComputeMarket and write deployments/<chain_id>.json."""
    from eth_utils import is_address

    from .chain.deploy import deploy_market
    from .chain.sender import TxSender
    from .errors import MarketError

    config = settings()
    rpc_url = rpc or config.rpc_url
    for name, value in (("--treasury", treasury), ("--stake-token", stake_token)):
        if value is not None and not is_address(value):
            fail(f"{name} {value!r} is not an address")
    w3, actual_chain_id = connect_checked(rpc_url, chain_id, config.rpc_timeout)
    account = signing_account(key, keystore, config.keystore_password, actual_chain_id)
    if int(w3.eth.get_balance(account.address)) == 0:
        fail(f"deployer {account.address} has no ETH on chain {actual_chain_id} to pay for gas")
    sender = TxSender(w3, account, receipt_timeout=config.receipt_timeout)
    try:
        deployment = deploy_market(
            sender,
            treasury=treasury,
            stake_token=stake_token,
            fee_bps=fee_bps,
            unbonding_period=unbonding_period,
        )
    except MarketError as exc:
        fail(f"deployment failed: {exc}")
    path = deployment.write(out or config.deployments_dir)
    if as_json:
        print(json.dumps(deployment.to_json()))
    else:
        console.print(
            f"ComputeMarket deployed at [bold]{deployment.market}[/] on chain {deployment.chain_id}"
        )
        console.print(f"block {deployment.block}, gas {deployment.gas_used:,}; recorded in {path}")


@app.command()
def devnet(
    chain: Annotated[str, typer.Option(help="anvil or ganache")] = "anvil",
    port: Annotated[int, typer.Option(help="loopback port; 0 picks a free one")] = 8545,
    out: Annotated[Path | None, typer.Option(help="deployments directory [default: ./deployments]")] = None,
) -> None:
    """Start a local devnet, deploy the market and a test token, and run until Ctrl-C."""
    from rich.table import Table

    from .chain.bootstrap import setup_devnet_market
    from .chain.devnet import ChainKind, Devnet

    try:
        kind = ChainKind(chain)
    except ValueError:
        fail(f"--chain must be anvil or ganache, not {chain!r}")
    if port:
        from .chain.devnet import port_in_use

        if port_in_use(port):
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
        for index, account in enumerate(node.accounts):
            table.add_row(str(index), account.address, "0x" + account.key.hex(), roles.get(index, ""))
        console.print(table)
        console.print(f"RPC        [bold]{node.rpc_url}[/]  (chain id {node.chain_id}, {kind})")
        console.print(f"market     [bold]{world.deployment.market}[/]  (recorded in {path})")
        console.print(f"test token [bold]{world.token}[/]  (TUSD, allow-listed, anyone can mint)")
        console.print("Press Ctrl-C to stop.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(0.5):
                if not node.running:
                    fail(f"{kind} exited unexpectedly; see {node.log_path}")
        except KeyboardInterrupt:
            pass
    finally:
        node.close()
        console.print(f"{kind} stopped.")


market_app = typer.Typer(help="The marketplace service: indexer, REST API, dashboard.", no_args_is_help=True)
app.add_typer(market_app, name="market")


@market_app.command("index")
def market_index(
    market: Annotated[str, typer.Option(help="ComputeMarket address")],
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC URL [default: $CMARKET_RPC_URL]")] = None,
    db: Annotated[str, typer.Option(help="SQLAlchemy URL of the store")] = "sqlite:///cmarket.db",
    from_block: Annotated[int, typer.Option(min=0, help="first block to index")] = 0,
    finality_depth: Annotated[int, typer.Option(min=1, help="blocks after which a reorg is refused")] = 64,
    poll_interval: Annotated[
        float, typer.Option(min=0.01, help="seconds between polls once caught up")
    ] = 0.5,
    until_caught_up: Annotated[bool, typer.Option(help="exit once the index reaches the head")] = False,
) -> None:
    """Run the indexer alone: follow the chain into the store until Ctrl-C."""
    import logging

    from eth_utils import is_address

    from .chain.rpc import RpcClient
    from .indexer.sync import Indexer, IndexerError, StepResult
    from .store.database import make_engine, migrate

    if not is_address(market):
        fail(f"--market {market!r} is not an address")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = settings()
    engine = make_engine(db)
    migrate(engine)
    client = RpcClient(rpc or config.rpc_url, timeout=config.rpc_timeout)
    indexer = Indexer(engine, client, market, start_block=from_block, finality_depth=finality_depth)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def report(result: StepResult) -> None:
        if result.events or result.reorged_to is not None:
            console.print(f"indexed blocks {result.from_block}..{result.to_block}: {result.events} events")
        if until_caught_up and result.caught_up:
            stop.set()

    try:
        indexer.initialize()
        indexer.run(stop, poll_interval=poll_interval, on_step=report)
    except IndexerError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass


@app.command()
def demo(
    chain: Annotated[str, typer.Option(help="anvil or ganache")] = "anvil",
) -> None:
    """Run a whole market on a fresh devnet and print what happened."""
    from .chain.devnet import ChainKind
    from .demo import run_demo

    try:
        kind = ChainKind(chain)
    except ValueError:
        fail(f"--chain must be anvil or ganache, not {chain!r}")
    run_demo(console, kind)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
