"""`cmarket market ...`: the marketplace service (indexer, REST API, dashboard)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .common import RpcOption, console, fail, settings, stop_on_signals

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ..indexer.sync import Indexer

app = typer.Typer(help="The marketplace service: indexer, REST API, dashboard.", no_args_is_help=True)

MarketRequired = Annotated[str, typer.Option("--market", help="ComputeMarket address")]
DbOption = Annotated[
    str, typer.Option("--db", help="SQLAlchemy URL: sqlite:///file.db or postgresql+psycopg://...")
]
FromBlockOption = Annotated[int, typer.Option(min=0, help="first block to index")]
FinalityOption = Annotated[int, typer.Option(min=1, help="blocks after which a reorg is refused")]
DEFAULT_DB = "sqlite:///cmarket.db"


def open_indexer(
    market: str, rpc: str | None, db: str, from_block: int, finality_depth: int
) -> tuple[Engine, Indexer]:
    """The migrated store and an initialized indexer for it, or a clear error."""
    import logging

    from eth_utils import is_address

    from ..chain.rpc import RpcClient
    from ..indexer.sync import Indexer, IndexerError
    from ..protocol.errors import ChainError
    from ..store.database import make_engine, migrate

    if not is_address(market):
        fail(f"--market {market!r} is not an address")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("httpx", "httpcore"):  # a line per RPC request otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    rpc_url = rpc or settings().rpc_url
    engine = make_engine(db)
    migrate(engine)
    indexer = Indexer(
        engine,
        RpcClient(rpc_url, timeout=settings().rpc_timeout),
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


@app.command("index")
def index(
    market: MarketRequired,
    rpc: RpcOption = None,
    db: Annotated[str, typer.Option(help="SQLAlchemy URL of the store")] = DEFAULT_DB,
    from_block: FromBlockOption = 0,
    finality_depth: FinalityOption = 64,
    poll_interval: Annotated[
        float, typer.Option(min=0.01, help="seconds between polls once caught up")
    ] = 0.5,
    until_caught_up: Annotated[bool, typer.Option(help="exit once the index reaches the head")] = False,
) -> None:
    """Run the indexer alone: follow the chain into the store until Ctrl-C."""
    from ..indexer.sync import IndexerError, StepResult

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


@app.command("serve")
def serve(
    market: MarketRequired,
    rpc: RpcOption = None,
    db: DbOption = DEFAULT_DB,
    from_block: FromBlockOption = 0,
    finality_depth: FinalityOption = 64,
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

    from ..api.app import create_app
    from ..api.settings import ApiSettings
    from ..dashboard.mount import assets_problem
    from ..indexer.sync import IndexerError
    from ..store.blobs import FilesystemBlobStore

    engine, indexer = open_indexer(market, rpc, db, from_block, finality_depth)
    stop = threading.Event()

    def follow_chain() -> None:
        try:
            indexer.run(stop, poll_interval=poll_interval)
        except IndexerError as exc:
            logging.getLogger("cmarket.indexer").error("indexer halted: %s", exc)

    worker = threading.Thread(target=follow_chain, name="indexer", daemon=True)
    worker.start()
    api = create_app(
        engine,
        FilesystemBlobStore(blobs),
        ApiSettings(max_blob_bytes=max_blob_mb * 1024 * 1024, response_cache_entries=cache_entries),
        indexer_status=indexer.status,
    )
    server = uvicorn.Server(uvicorn.Config(api, host=host, port=port, log_level="warning"))
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
