"""What every command group shares: the consoles, one-line failures, the options that name a
chain, a market and a signing key (declared once), amounts in token units, signals."""

from __future__ import annotations

import functools
import inspect
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from .settings import CliSettings

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3

    from ..chain.market import MarketActor

console = Console()
errors_console = Console(stderr=True)

RpcOption = Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL (default: $CMARKET_RPC_URL)")]
ApiOption = Annotated[
    str | None, typer.Option("--api", help="marketplace service URL (default: $CMARKET_API_URL)")
]
MarketOption = Annotated[
    str | None, typer.Option("--market", help="ComputeMarket address (default: deployments/<chain_id>.json)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]

Command = TypeVar("Command", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> NoReturn:
    """Ends the command with one line on stderr and exit code `code`."""
    errors_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def settings() -> CliSettings:
    return CliSettings()


def api_url(api: str | None) -> str:
    return api or settings().api_url


def stop_on_signals(stop: threading.Event) -> None:
    """Ctrl-C and SIGTERM set `stop`. Installed explicitly: a process started in the background
    by a non-interactive shell inherits SIGINT as ignored, and Ctrl-C would then do nothing."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())


def parse_amount(text: str, decimals: int = 18, *, allow_zero: bool = False) -> int:
    """'0.01' in token units -> base units; refuses negatives and more precision than the token has."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        fail(f"{text!r} is not a number")
    units = value.scaleb(decimals)
    if not value.is_finite() or value < 0 or (value == 0 and not allow_zero):
        fail(f"{text!r} must be {'zero or more' if allow_zero else 'positive'}")
    if units != units.to_integral_value():
        fail(f"{text!r} has more than {decimals} decimals")
    return int(units)


def token_decimals(w3: Web3, token: str) -> int:
    """Decimals of an ERC-20 (18 for ETH), or a clear error if `token` is not one."""
    from ..chain.market import bind
    from ..protocol.views import ETH

    if token == ETH:
        return 18
    try:
        return int(bind(w3, "TestToken", token).functions.decimals().call())
    except Exception as exc:
        fail(f"{token} does not answer as an ERC-20 token: {exc.__class__.__name__}")


def connect_checked(rpc_url: str, expected_chain_id: int | None = None) -> tuple[Web3, int]:
    """A Web3 for `rpc_url`, with a clear error if nothing answers there or it is the wrong chain."""
    from ..chain.deploy import connect

    w3 = connect(rpc_url, timeout=settings().rpc_timeout)
    try:
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:
        fail(f"cannot reach an Ethereum JSON-RPC endpoint at {rpc_url}: {exc.__class__.__name__}: {exc}")
    if expected_chain_id is not None and chain_id != expected_chain_id:
        fail(f"{rpc_url} is chain {chain_id}, not the expected chain {expected_chain_id}")
    return w3, chain_id


def market_address(market: str | None, chain_id: int) -> str:
    """`--market`, else the market recorded in deployments/<chain_id>.json."""
    from eth_utils import is_address, to_checksum_address

    from ..chain.deploy import Deployment

    if market is None:
        path = settings().deployments_dir / f"{chain_id}.json"
        if not path.exists():
            fail(f"no --market given and no {path}: deploy first or pass --market")
        market = Deployment.read(path).market
    if not is_address(market):
        fail(f"--market {market!r} is not an address")
    return str(to_checksum_address(market))


@dataclass(frozen=True)
class AccountOptions:
    """The chain, market and key a command acts with (--rpc, --market, --key, --keystore,
    --devnet-account); `role` and `default_account` come from the command."""

    rpc: str | None
    market: str | None
    key: str | None
    keystore: Path | None
    devnet_account: int | None
    role: str
    default_account: int

    @property
    def rpc_url(self) -> str:
        return self.rpc or settings().rpc_url

    def signer(self, chain_id: int) -> LocalAccount:
        """The signing key: --key, --keystore, or a devnet's well-known account."""
        from ..chain.devnet import DEVNET_CHAIN_IDS, devnet_accounts
        from .keys import BadKey, from_hex, from_keystore

        if sum(option is not None for option in (self.key, self.keystore, self.devnet_account)) > 1:
            fail("pass one of --key, --keystore and --devnet-account")
        try:
            if self.key:
                return from_hex(self.key)
            if self.keystore:
                password = settings().keystore_password
                if password is None:
                    password = typer.prompt(f"password for {self.keystore}", hide_input=True)
                return from_keystore(self.keystore, password)
        except BadKey as exc:
            fail(str(exc))
        if chain_id not in DEVNET_CHAIN_IDS:
            fail(f"chain {chain_id} is not a devnet: pass --key HEX or --keystore FILE to sign")
        return devnet_accounts()[self.default_account if self.devnet_account is None else self.devnet_account]

    def actor(self) -> MarketActor:
        """The market as the signing account sees it, or a clear error."""
        from ..chain.market import Market, MarketActor
        from ..chain.sender import TxSender

        w3, chain_id = connect_checked(self.rpc_url)
        market = market_address(self.market, chain_id)
        sender = TxSender(w3, self.signer(chain_id), receipt_timeout=settings().receipt_timeout)
        return MarketActor(Market(w3, market), sender)


def with_account(role: str, default_account: int, *, market: bool = True) -> Callable[[Command], Command]:
    """Gives a command the account options, declared here once, and hands them to it as its
    `account: AccountOptions` parameter. `role` names the key in the help ("provider private
    key"); `default_account` is the devnet account used when no key is given; `market=False`
    leaves --market out (a command that deploys one)."""
    devnet_help = f"sign with devnet account N (devnets only) (default: {default_account})"
    key_options: list[tuple[str, Any]] = [
        ("rpc", RpcOption),
        *([("market", MarketOption)] if market else []),
        ("key", Annotated[str | None, typer.Option("--key", help=f"{role} private key, hex")]),
        (
            "keystore",
            Annotated[Path | None, typer.Option("--keystore", help=f"{role} eth-account keystore file")],
        ),
        (
            "devnet_account",
            Annotated[int | None, typer.Option("--devnet-account", min=0, max=9, help=devnet_help)],
        ),
    ]

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        kept = [parameter for parameter in signature.parameters.values() if parameter.name != "account"]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
            for name, annotation in key_options
        ]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            options = {
                name: kwargs.pop(name, None)
                for name in ("rpc", "market", "key", "keystore", "devnet_account")
            }
            account = AccountOptions(**options, role=role, default_account=default_account)
            return command(*args, account=account, **kwargs)

        parameters = [*kept, *added]
        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run  # type: ignore[return-value]

    return decorate
