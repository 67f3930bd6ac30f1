"""A ready-to-use market on a fresh devnet: ComputeMarket plus an allow-listed test token."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from .deploy import DEVNET_DOUBLING_PERIOD, Deployment, connect, deploy_contract, deploy_market
from .devnet import Devnet
from .market import Market, MarketActor
from .sender import TxSender


@dataclass(frozen=True)
class DevnetMarket:
    w3: Web3
    deployment: Deployment
    market: Market
    token: str

    def actor(self, node: Devnet, index: int) -> MarketActor:
        """The market as seen by the devnet's well-known account `index`."""
        return MarketActor(self.market, TxSender(self.w3, node.accounts[index]))


def setup_devnet_market(node: Devnet, *, fee_bps: int = 100, unbonding_period: int = 3600) -> DevnetMarket:
    """Deploys the market (account 0 owns it, account 1 is the treasury) and an allow-listed TestToken."""
    w3 = connect(node.rpc_url)
    owner = TxSender(w3, node.accounts[0])
    deployment = deploy_market(
        owner,
        treasury=node.accounts[1].address,
        fee_bps=fee_bps,
        unbonding_period=unbonding_period,
        doubling_period=DEVNET_DOUBLING_PERIOD,
    )
    token, _ = deploy_contract(owner, "TestToken", "Test USD", "TUSD")
    market = Market(w3, deployment.market)
    MarketActor(market, owner).send(market.calls.set_payment_token(token, True))
    return DevnetMarket(w3, deployment, market, token)
