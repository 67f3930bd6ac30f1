"""`cmarket stake ...` against real markets: one staked in ETH, one staked in an ERC-20."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from marketplace.chain.deploy import deploy_market
from marketplace.chain.market import Market
from marketplace.cli import app
from tests.helpers import ETHER, Chain

runner = CliRunner()


def cmarket(chain: Chain, market: str, account: int, *args: str) -> str:
    options = ["--rpc", chain.devnet.rpc_url, "--market", market, "--devnet-account", str(account)]
    result = runner.invoke(app, ["stake", *args, *options])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_stake_commands_on_a_market_staked_in_an_erc20(chain: Chain) -> None:
    """`stake add` approves and stakes the token (no ETH sent); unstake and status follow."""
    deployment = deploy_market(chain.owner.sender, stake_token=chain.token.address, unbonding_period=100)
    market = Market(chain.w3, deployment.market)
    staker = chain.devnet.accounts[7].address
    chain.send(chain.providers[3], chain.token, "mint", staker, 10 * ETHER)
    eth_before = chain.eth_balance(market.address)

    cmarket(chain, market.address, 7, "register", "ipfs://erc20-staker")
    cmarket(chain, market.address, 7, "add", "2.5")
    cmarket(chain, market.address, 7, "unstake", "0.5")

    info = market.provider(staker)
    assert (info.registered, info.free_stake, info.unbonding) == (True, 2 * ETHER, ETHER // 2)
    assert chain.token_balance(chain.token, staker) == 10 * ETHER - 5 * ETHER // 2
    assert chain.token_balance(chain.token, market.address) == 5 * ETHER // 2
    assert chain.eth_balance(market.address) == eth_before == 0
    status = json.loads(cmarket(chain, market.address, 7, "status", "--json"))
    assert (status["free"], status["unbonding"]) == (str(2 * ETHER), str(ETHER // 2))


def test_stake_add_sends_ether_on_a_market_staked_in_ether(chain: Chain) -> None:
    outsider = chain.outsider.address
    before = chain.eth_balance(chain.market.address)
    cmarket(chain, chain.market.address, 9, "register")
    cmarket(chain, chain.market.address, 9, "add", "1")
    assert chain.market.provider(outsider).free_stake == ETHER
    assert chain.eth_balance(chain.market.address) == before + ETHER
