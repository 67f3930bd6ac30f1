"""`cmarket stake ...`: a provider's registration and stake, without running the daemon."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from .common import AccountOptions, JsonOption, console, fail, parse_amount, token_decimals, with_account

if TYPE_CHECKING:
    from ..chain.market import MarketActor, TxResult

app = typer.Typer(help="Provider staking: register, stake, unstake, withdraw stake.")
with_provider = with_account("provider", default_account=4)


@app.command("status")
@with_provider
def status(account: AccountOptions, as_json: JsonOption = False) -> None:
    """Show a provider's registration, free, locked and unbonding stake."""
    actor = account.actor()
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


def _stake_amount(account: AccountOptions, amount: str) -> tuple[MarketActor, int]:
    """The actor, and `amount` of the stake token in base units (its own decimals)."""
    actor = account.actor()
    return actor, parse_amount(amount, token_decimals(actor.market.w3, actor.market.stake_token))


def _send(actor: MarketActor, what: str, transaction: Callable[[MarketActor], TxResult]) -> None:
    from ..protocol.errors import MarketError

    try:
        result = transaction(actor)
    except MarketError as exc:
        fail(str(exc))
    console.print(f"{what}: mined in block {result.block_number} ({result.gas_used:,} gas)")


@app.command("register")
@with_provider
def register(
    account: AccountOptions,
    metadata_uri: Annotated[str, typer.Argument(help="where the provider describes itself")] = "",
) -> None:
    """Register as a provider."""
    _send(account.actor(), "registerProvider", lambda actor: actor.register(metadata_uri))


@app.command("add")
@with_provider
def add(
    account: AccountOptions,
    amount: Annotated[str, typer.Argument(help="stake to add, in stake-token units (ETH by default)")],
) -> None:
    """Add free stake (sent as ETH when the stake token is ETH, pulled as an ERC-20 otherwise)."""
    actor, wei = _stake_amount(account, amount)

    def approve_and_stake(actor: MarketActor) -> TxResult:
        actor.allow(actor.market.stake_token, wei)
        return actor.stake(wei)

    _send(actor, "stake", approve_and_stake)


@app.command("unstake")
@with_provider
def unstake(
    account: AccountOptions,
    amount: Annotated[str, typer.Argument(help="free stake to start unbonding, in stake-token units")],
) -> None:
    """Move free stake to unbonding; `cmarket stake withdraw` sends it once the period is over."""
    actor, wei = _stake_amount(account, amount)
    _send(actor, "requestUnstake", lambda actor: actor.request_unstake(wei))


@app.command("withdraw")
@with_provider
def withdraw(account: AccountOptions) -> None:
    """Withdraw stake whose unbonding period is over."""
    _send(account.actor(), "withdrawStake", lambda actor: actor.withdraw_stake())
