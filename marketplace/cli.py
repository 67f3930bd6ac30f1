"""`cmarket`: the command line. Heavy imports happen inside commands so `--help` starts fast."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from sqlalchemy import Engine
    from web3 import Web3

    from .client import Requester
    from .config import Settings
    from .indexer.sync import Indexer

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


def stop_on_signals(stop: threading.Event) -> None:
    """Ctrl-C and SIGTERM set `stop`. Installed explicitly: a process started in the background
    by a non-interactive shell inherits SIGINT as ignored, and Ctrl-C would then do nothing."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())


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
        stop_on_signals(stop)
        while not stop.wait(0.5):
            if not node.running:
                fail(f"{kind} exited unexpectedly; see {node.log_path}")
    finally:
        node.close()
        console.print(f"{kind} stopped.")


market_app = typer.Typer(help="The marketplace service: indexer, REST API, dashboard.", no_args_is_help=True)
app.add_typer(market_app, name="market")


def open_indexer(
    market: str, rpc: str | None, db: str, from_block: int, finality_depth: int
) -> tuple[Engine, Indexer]:
    """The migrated store and an initialized indexer for it, or a clear error."""
    import logging

    from eth_utils import is_address

    from .chain.rpc import RpcClient
    from .errors import ChainError
    from .indexer.sync import Indexer, IndexerError
    from .store.database import make_engine, migrate

    if not is_address(market):
        fail(f"--market {market!r} is not an address")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore"):  # a line per RPC request otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    config = settings()
    rpc_url = rpc or config.rpc_url
    engine = make_engine(db)
    migrate(engine)
    indexer = Indexer(
        engine,
        RpcClient(rpc_url, timeout=config.rpc_timeout),
        market,
        start_block=from_block,
        finality_depth=finality_depth,
    )
    try:
        indexer.initialize()
    except IndexerError as exc:
        fail(str(exc))
    except ChainError as exc:
        fail(f"cannot start indexing {rpc_url}: {exc}")
    return engine, indexer


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
    from .indexer.sync import IndexerError, StepResult

    _, indexer = open_indexer(market, rpc, db, from_block, finality_depth)
    stop = threading.Event()
    stop_on_signals(stop)

    def report(result: StepResult) -> None:
        if result.events or result.reorged_to is not None:
            console.print(f"indexed blocks {result.from_block}..{result.to_block}: {result.events} events")
        if until_caught_up and result.caught_up:
            stop.set()

    try:
        indexer.run(stop, poll_interval=poll_interval, on_step=report)
    except IndexerError as exc:
        fail(str(exc))


@market_app.command("serve")
def market_serve(
    market: Annotated[str, typer.Option(help="ComputeMarket address")],
    rpc: Annotated[str | None, typer.Option(help="JSON-RPC URL [default: $CMARKET_RPC_URL]")] = None,
    db: Annotated[str, typer.Option(help="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://...")] = (
        "sqlite:///cmarket.db"
    ),
    from_block: Annotated[int, typer.Option(min=0, help="first block to index")] = 0,
    finality_depth: Annotated[int, typer.Option(min=1, help="blocks after which a reorg is refused")] = 64,
    blobs: Annotated[Path, typer.Option(help="directory of the blob store")] = Path("blobs"),
    max_blob_mb: Annotated[int, typer.Option(min=1, help="largest blob accepted, MiB")] = 64,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    poll_interval: Annotated[float, typer.Option(min=0.01, help="seconds between chain polls")] = 0.25,
    cache_entries: Annotated[
        int, typer.Option(min=0, help="answers kept in memory until the index changes (0: none)")
    ] = 4096,
) -> None:
    """Run the indexer and the REST API in one process."""
    import logging

    import uvicorn

    from .api.app import create_app
    from .indexer.sync import IndexerError
    from .store.blobs import FilesystemBlobStore

    engine, indexer = open_indexer(market, rpc, db, from_block, finality_depth)
    stop = threading.Event()

    def index() -> None:
        try:
            indexer.run(stop, poll_interval=poll_interval)
        except IndexerError as exc:
            logging.getLogger("cmarket.indexer").error("indexer halted: %s", exc)

    worker = threading.Thread(target=index, name="indexer", daemon=True)
    worker.start()
    app_ = create_app(
        engine,
        FilesystemBlobStore(blobs),
        max_blob_bytes=max_blob_mb * 1024 * 1024,
        response_cache_entries=cache_entries,
        indexer_status=indexer.status,
    )
    server = uvicorn.Server(uvicorn.Config(app_, host=host, port=port, log_level="warning"))
    from .dashboard.mount import assets_problem

    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104 (compared, not bound)
    # soft_wrap: a URL broken across lines can be neither clicked nor scraped
    console.print(f"marketplace for {market}: dashboard at {url}/  (API docs at {url}/docs)", soft_wrap=True)
    if (problem := assets_problem()) is not None:
        console.print(f"[yellow]warning: {problem}[/]", soft_wrap=True)
    try:
        server.run()
    finally:
        stop.set()
        worker.join(timeout=10)


job_app = typer.Typer(help="Requester commands: submit jobs, follow them, fetch verified results.")
app.add_typer(job_app, name="job")

RpcOption = Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL [default: $CMARKET_RPC_URL]")]
ApiOption = Annotated[str, typer.Option("--api", help="marketplace service URL")]
MarketOption = Annotated[
    str | None, typer.Option("--market", help="ComputeMarket address [default: deployments/<chain_id>.json]")
]
KeyOption = Annotated[str | None, typer.Option("--key", help="requester private key, hex")]
KeystoreOption = Annotated[Path | None, typer.Option("--keystore", help="requester keystore file")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]
DEFAULT_API = "http://127.0.0.1:8000"


def requester_for(
    rpc: str | None,
    api: str,
    market: str | None,
    key: str | None,
    keystore: Path | None,
    account_index: int = 2,
) -> Requester:
    """A Requester from command-line options (the devnet's account 2 by default on a devnet)."""
    from eth_utils import is_address

    from .chain.deploy import Deployment
    from .chain.devnet import DEVNET_CHAIN_IDS, devnet_accounts
    from .chain.market import Market, MarketActor
    from .chain.sender import TxSender
    from .client import MarketplaceApi, Requester

    config = settings()
    w3, chain_id = connect_checked(rpc or config.rpc_url, None, config.rpc_timeout)
    if market is None:
        path = config.deployments_dir / f"{chain_id}.json"
        if not path.exists():
            fail(f"no --market given and no {path}: deploy first or pass --market")
        market = Deployment.read(path).market
    if not is_address(market):
        fail(f"--market {market!r} is not an address")
    if key is None and keystore is None and chain_id in DEVNET_CHAIN_IDS:
        account = devnet_accounts()[account_index]
    else:
        account = signing_account(key, keystore, config.keystore_password, chain_id)
    sender = TxSender(w3, account, receipt_timeout=config.receipt_timeout)
    return Requester(MarketplaceApi(api), MarketActor(Market(w3, market), sender))


def parse_amount(text: str, decimals: int = 18) -> int:
    """'0.01' in token units -> base units; refuses negatives and more precision than the token has."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation:
        fail(f"{text!r} is not a number")
    units = value.scaleb(decimals)
    if value <= 0 or units != units.to_integral_value():
        fail(f"{text!r} must be positive with at most {decimals} decimals")
    return int(units)


@job_app.command("submit")
def job_submit(
    spec: Annotated[Path, typer.Option(help="job spec, a JSON file (workload, args, limits)")],
    reward: Annotated[str, typer.Option(help="reward per replica in token units, e.g. 0.01")],
    inputs: Annotated[list[Path] | None, typer.Option("--input", help="input file (repeatable)")] = None,
    replicas: Annotated[int, typer.Option(min=1, max=15)] = 1,
    token: Annotated[str, typer.Option(help="ETH or an allow-listed ERC-20 address")] = "ETH",
    collateral: Annotated[str, typer.Option(help="collateral per replica in stake-token units")] = "0",
    claim_window: Annotated[int, typer.Option(min=1, help="seconds")] = 3600,
    run_timeout: Annotated[int, typer.Option(min=1, help="seconds")] = 3600,
    reveal_window: Annotated[int, typer.Option(min=1, help="seconds")] = 3600,
    api: ApiOption = DEFAULT_API,
    rpc: RpcOption = None,
    market: MarketOption = None,
    key: KeyOption = None,
    keystore: KeystoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a spec and its inputs, post the job, print its id."""
    from eth_utils import is_address

    from .chain.market import ETH, bind
    from .errors import MarketError

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
    requester = requester_for(rpc, api, market, key, keystore)
    decimals = 18
    if token_address != ETH:
        decimals = int(bind(requester.market.w3, "TestToken", token_address).functions.decimals().call())
    try:
        submitted = requester.submit(
            document,
            blobs,
            reward_per_replica=parse_amount(reward, decimals),
            replicas=replicas,
            token=token_address,
            collateral_per_replica=parse_amount(collateral) if collateral != "0" else 0,
            claim_window=claim_window,
            run_timeout=run_timeout,
            reveal_window=reveal_window,
        )
    except MarketError as exc:
        fail(str(exc))
    if as_json:
        receipt = submitted.transaction.receipt
        summary = {
            "job_id": submitted.job_id,
            "spec": submitted.spec.digest,
            "inputs": [ref.digest for ref in submitted.inputs],
            "tx_hash": receipt["transactionHash"].to_0x_hex(),
        }
        print(json.dumps(summary))
    else:
        console.print(f"job [bold]{submitted.job_id}[/] posted (spec {submitted.spec.digest[:16]}…)")


def _job_line(job: dict[str, Any]) -> str:
    return (
        f"job {job['id']}: [bold]{job['status']}[/]  claims {job['claims']}/{job['replicas']}"
        f"  commits {job['commits']}/{job['replicas']}  reveals {job['reveals']}/{job['replicas']}"
    )


@job_app.command("status")
def job_status(
    job_id: Annotated[int, typer.Argument(min=1)],
    api: ApiOption = DEFAULT_API,
    as_json: JsonOption = False,
) -> None:
    """Show a job as the marketplace indexed it."""
    from .client import ClientError, MarketplaceApi

    try:
        job = MarketplaceApi(api).job(job_id)
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


@job_app.command("wait")
def job_wait(
    job_id: Annotated[int, typer.Argument(min=1)],
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds")] = 600.0,
    api: ApiOption = DEFAULT_API,
) -> None:
    """Follow a job until it completes, fails or is cancelled (exit 1 unless it completed)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .client import ClientError, MarketplaceApi

    client = MarketplaceApi(api)
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


@job_app.command("result")
def job_result(
    job_id: Annotated[int, typer.Argument(min=1)],
    out: Annotated[Path | None, typer.Option(help="write the result here [default: stdout]")] = None,
    api: ApiOption = DEFAULT_API,
    rpc: RpcOption = None,
    market: MarketOption = None,
) -> None:
    """Download a job's result and verify it against the result hash settled on-chain."""
    from .errors import MarketError

    requester = requester_for(rpc, api, market, None, None)
    try:
        data = requester.result(job_id)
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


@job_app.command("cancel")
def job_cancel(
    job_id: Annotated[int, typer.Argument(min=1)],
    api: ApiOption = DEFAULT_API,
    rpc: RpcOption = None,
    market: MarketOption = None,
    key: KeyOption = None,
    keystore: KeystoreOption = None,
) -> None:
    """Cancel an open job (yours while unclaimed, or anyone's slot after its claim window)."""
    from .errors import MarketError

    requester = requester_for(rpc, api, market, key, keystore)
    try:
        requester.cancel(job_id)
    except MarketError as exc:
        fail(str(exc))
    console.print(f"job {job_id} cancelled; its escrow is credited back to the requester")


provider_app = typer.Typer(help="Provider commands: run the daemon that claims, runs and settles jobs.")
app.add_typer(provider_app, name="provider")
stake_app = typer.Typer(help="Provider staking: register, stake, unstake, withdraw stake.")
app.add_typer(stake_app, name="stake")
workload_app = typer.Typer(help="Workloads: the built-in catalog, and running a job spec locally.")
app.add_typer(workload_app, name="workload")

DevnetAccountOption = Annotated[
    int | None,
    typer.Option("--devnet-account", min=0, max=9, help="sign with devnet account N (devnets only)"),
]


def market_actor(
    rpc: str | None,
    market: str | None,
    key: str | None,
    keystore: Path | None,
    devnet_account: int | None,
    default_account: int,
) -> tuple[Any, str]:
    """A MarketActor from command-line options, and the market address."""
    from eth_utils import is_address

    from .chain.deploy import Deployment
    from .chain.devnet import DEVNET_CHAIN_IDS, devnet_accounts
    from .chain.market import Market, MarketActor
    from .chain.sender import TxSender

    config = settings()
    w3, chain_id = connect_checked(rpc or config.rpc_url, None, config.rpc_timeout)
    if market is None:
        path = config.deployments_dir / f"{chain_id}.json"
        if not path.exists():
            fail(f"no --market given and no {path}: deploy first or pass --market")
        market = Deployment.read(path).market
    if not is_address(market):
        fail(f"--market {market!r} is not an address")
    if devnet_account is not None or (key is None and keystore is None):
        if chain_id not in DEVNET_CHAIN_IDS:
            fail(f"chain {chain_id} is not a devnet: pass --key HEX or --keystore FILE to sign")
        account = devnet_accounts()[default_account if devnet_account is None else devnet_account]
    else:
        account = signing_account(key, keystore, config.keystore_password, chain_id)
    sender = TxSender(w3, account, receipt_timeout=config.receipt_timeout)
    return MarketActor(Market(w3, market), sender), market


@provider_app.command("start")
def provider_start(
    api: ApiOption = DEFAULT_API,
    rpc: RpcOption = None,
    market: MarketOption = None,
    key: KeyOption = None,
    keystore: KeystoreOption = None,
    devnet_account: DevnetAccountOption = None,
    state: Annotated[Path, typer.Option(help="directory of the provider's state and results")] = Path(
        "provider-state"
    ),
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (ray start --head prints it) [default: local Ray]")
    ] = None,
    ray_cpus: Annotated[int | None, typer.Option(min=1, help="CPUs of a local Ray")] = None,
    workloads: Annotated[
        str | None, typer.Option(help='comma-separated built-in names and "wasm" [default: all]')
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
    claim_delay: Annotated[
        float, typer.Option(min=0, help="seconds before claiming a job meant for other providers")
    ] = 0.5,
    poll_interval: Annotated[float, typer.Option(min=0.01, max=10, help="seconds between idle rounds")] = 0.1,
    drain_timeout: Annotated[
        float, typer.Option(min=0, help="seconds SIGTERM waits for in-flight work")
    ] = 30.0,
    metrics_port: Annotated[int | None, typer.Option(min=0, max=65535, help="serve /metrics here")] = None,
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
    actor, market_address = market_actor(rpc, market, key, keystore, devnet_account, default_account=4)
    logs.configure(logging.INFO, json_lines=log_format == "json")
    try:
        config = ProviderConfig(
            rpc_url=rpc or settings().rpc_url, market=market_address, api_url=api, state_path=state,
            ray_address=ray_address, ray_cpus=ray_cpus, workloads=workloads,
            min_price_per_fuel=min_price_per_fuel,
            collateral_budget=parse_amount(collateral_budget) if collateral_budget else None,
            max_concurrent_jobs=max_concurrent, max_batch=max_batch,
            stake=parse_amount(stake) if stake != "0" else 0,
            withdraw_threshold=parse_amount(withdraw_threshold) if withdraw_threshold != "0" else 0,
            claim_delay=claim_delay, poll_interval=poll_interval, drain_timeout=drain_timeout,
            metrics_port=metrics_port, byzantine=byzantine,
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


@stake_app.command("status")
def stake_status(
    rpc: RpcOption = None,
    market: MarketOption = None,
    key: KeyOption = None,
    keystore: KeystoreOption = None,
    devnet_account: DevnetAccountOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a provider's registration, free, locked and unbonding stake."""
    actor, _ = market_actor(rpc, market, key, keystore, devnet_account, default_account=4)
    info = actor.market.provider(actor.address)
    fields = {
        "provider": actor.address, "registered": info.registered, "free": str(info.free_stake),
        "locked": str(info.locked_stake), "unbonding": str(info.unbonding),
        "unbonding_ready_at": info.unbonding_ready_at,
    }  # fmt: skip
    if as_json:
        print(json.dumps(fields))
        return
    for name, value in fields.items():
        console.print(f"{name:>20}  {value}")


def _staking_call(function: str, *args: Any, value: int = 0, **options: Any) -> None:
    from .errors import MarketError

    actor, _ = market_actor(**options, default_account=4)
    try:
        result = actor.send(actor.market.call(function, *args, value=value))
    except MarketError as exc:
        fail(str(exc))
    console.print(f"{function}: mined in block {result.block_number} ({result.gas_used:,} gas)")


@stake_app.command("register")
def stake_register(
    metadata_uri: Annotated[str, typer.Argument(help="where the provider describes itself")] = "",
    rpc: RpcOption = None,
    market: MarketOption = None,
    key: KeyOption = None,
    keystore: KeystoreOption = None,
    devnet_account: DevnetAccountOption = None,
) -> None:
    """Register as a provider."""
    _staking_call(
        "registerProvider", metadata_uri,
        rpc=rpc, market=market, key=key, keystore=keystore, devnet_account=devnet_account,
    )  # fmt: skip


@stake_app.command("add")
def stake_add(
    amount: Annotated[str, typer.Argument(help="stake to add, in stake-token units (ETH by default)")],
    rpc: RpcOption = None,
    market: MarketOption = None,
    key: KeyOption = None,
    keystore: KeystoreOption = None,
    devnet_account: DevnetAccountOption = None,
) -> None:
    """Add free stake (sends ETH with the call when the stake token is ETH)."""
    wei = parse_amount(amount)
    _staking_call(
        "stake", wei, value=wei,
        rpc=rpc, market=market, key=key, keystore=keystore, devnet_account=devnet_account,
    )  # fmt: skip


@stake_app.command("unstake")
def stake_unstake(
    amount: Annotated[str, typer.Argument(help="free stake to start unbonding, in stake-token units")],
    rpc: RpcOption = None,
    market: MarketOption = None,
    key: KeyOption = None,
    keystore: KeystoreOption = None,
    devnet_account: DevnetAccountOption = None,
) -> None:
    """Move free stake to unbonding; `cmarket stake withdraw` sends it once the period is over."""
    _staking_call(
        "requestUnstake", parse_amount(amount),
        rpc=rpc, market=market, key=key, keystore=keystore, devnet_account=devnet_account,
    )  # fmt: skip


@stake_app.command("withdraw")
def stake_withdraw(
    rpc: RpcOption = None,
    market: MarketOption = None,
    key: KeyOption = None,
    keystore: KeystoreOption = None,
    devnet_account: DevnetAccountOption = None,
) -> None:
    """Withdraw stake whose unbonding period is over."""
    _staking_call(
        "withdrawStake", rpc=rpc, market=market, key=key, keystore=keystore, devnet_account=devnet_account
    )


@workload_app.command("list")
def workload_list(as_json: JsonOption = False) -> None:
    """The built-in workloads: arguments, inputs and cost model."""
    from provider.workloads import catalog

    entries = catalog()
    if as_json:
        print(json.dumps([
            {"name": e.name, "description": e.description, "args_schema": e.args_schema,
             "inputs": e.inputs, "cost_model": e.cost_model}
            for e in entries
        ]))  # fmt: skip
        return
    for entry in entries:
        console.print(f"[bold]{entry.name}[/]  {entry.description}")
        console.print(f"    inputs: {entry.inputs}")
        console.print(f"    cost:   {entry.cost_model}")


@workload_app.command("run")
def workload_run(
    spec: Annotated[Path, typer.Option(help="job spec, a JSON file")],
    inputs: Annotated[list[Path] | None, typer.Option("--input", help="input file (repeatable)")] = None,
    module: Annotated[Path | None, typer.Option(help="the WebAssembly module the spec names")] = None,
    out: Annotated[Path | None, typer.Option(help="write the result here")] = None,
) -> None:
    """Run a job spec locally, as a provider would, and print its result hash and fuel used.

    Inputs given with --input are added to the spec's `inputs` (as `cmarket job submit` does);
    the module of a wasm spec is given with --module (its digest must match the spec's)."""
    from provider.workloads import WorkloadError, run_job

    from .hashing import sha256
    from .spec import InvalidSpec, WasmWorkload, parse_spec

    try:
        document = json.loads(spec.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"cannot read spec {spec}: {exc}")
    blobs: dict[str, bytes] = {}
    for path in inputs or []:
        try:
            data = path.read_bytes()
        except OSError as exc:
            fail(f"cannot read input {path}: {exc}")
        blobs[sha256(data).hex()] = data
    if isinstance(document, dict):
        document = {**document, "inputs": [*document.get("inputs", []), *blobs]}
    try:
        job = parse_spec(document)
    except InvalidSpec as exc:
        fail(str(exc))
    if isinstance(job.workload, WasmWorkload):
        if module is None:
            fail("the spec runs a WebAssembly module: pass it with --module")
        code = module.read_bytes()
        if sha256(code).hex() != job.workload.module:
            fail(f"{module} hashes to {sha256(code).hex()}, not the spec's module {job.workload.module}")
        blobs[job.workload.module] = code
    try:
        result = run_job(job, blobs)
    except WorkloadError as exc:
        fail(f"{exc.code}: {exc.message}")
    if out is not None:
        out.write_bytes(result.output)
    console.print(f"result sha256 0x{sha256(result.output).hex()}  ({len(result.output)} bytes)")
    console.print(f"fuel used {result.fuel_used:,}; spec digest {job.digest}")


@app.command()
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
    from .chain.devnet import ChainKind
    from .demo import run_live_demo, run_scripted_demo
    from .errors import MarketError

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
