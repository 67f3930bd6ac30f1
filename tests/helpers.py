"""Shared test helpers: the deployed-market world every test starts from, and job shortcuts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.contract import Contract

from marketplace.chain.deploy import (
    DEVNET_DOUBLING_PERIOD,
    Deployment,
    connect,
    deploy_contract,
    deploy_market,
)
from marketplace.chain.devnet import ChainKind, Devnet
from marketplace.chain.market import Market, MarketActor, TxResult, bind, encode_call
from marketplace.chain.sender import TxSender
from marketplace.protocol.errors import ContractRevert
from marketplace.protocol.hashing import commitment
from marketplace.protocol.status import JobStatus
from marketplace.protocol.views import ETH, JobParams

ETHER = 10**18
FEE_BPS = 100
UNBONDING = 7 * 24 * 3600
PROVIDER_STAKE = 100 * ETHER
TOKEN_SUPPLY = 1_000_000 * ETHER


@dataclass
class Chain:
    """What every test sees: a deployed market, tokens, and actors with fresh nonce caches."""

    devnet: Devnet
    w3: Web3
    deployment: Deployment
    market: Market
    token: Contract  # allow-listed plain ERC-20
    fot: Contract  # allow-listed fee-on-transfer ERC-20 (1%)
    owner: MarketActor
    treasury: str
    requester: MarketActor
    requester2: MarketActor
    providers: list[Provider]
    outsider: MarketActor
    next_timestamp: int | None = None  # set by `warp` for the next block

    def actor(self, index: int) -> MarketActor:
        return MarketActor(self.market, TxSender(self.w3, self.devnet.accounts[index]))

    def send(
        self, actor: MarketActor, contract: Contract, function: str, *args: Any, value: int = 0
    ) -> TxResult:
        """Sends any contract call from `actor` (token approvals, attacker set-up)."""
        return actor.send(encode_call(contract, function, *args, value=value))

    def eth_balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))

    def token_balance(self, token: Contract, address: str) -> int:
        return int(token.functions.balanceOf(Web3.to_checksum_address(address)).call())

    def now(self) -> int:
        return self.devnet.latest_timestamp()

    def warp(self, timestamp: int) -> None:
        """The next transaction is mined at exactly `timestamp`."""
        self.devnet.set_next_block_timestamp(timestamp)
        self.next_timestamp = timestamp

    def sleep(self, seconds: int) -> None:
        self.devnet.increase_time(seconds)
        self.next_timestamp = None

    def next_block_time(self) -> int:
        """The earliest timestamp the next block may carry: a warped one, else the latest block's
        own (a devnet mines blocks within one second with the same timestamp)."""
        latest = self.now()
        if self.next_timestamp is not None and self.next_timestamp > latest:
            return self.next_timestamp
        return latest


class Provider(MarketActor):
    """A test provider: before it claims, the chain's clock moves on to when the draw lets it (if
    that time has not come), so tests of other rules than the sortition's claim as they did. The
    draw itself is tested with plain actors (tests/integration/test_sortition.py)."""

    chain: Chain

    def claim(self, job_id: int) -> TxResult:
        self.await_seats([job_id])
        return super().claim(job_id)

    def claim_many(self, job_ids: Sequence[int]) -> TxResult:
        self.await_seats(job_ids)
        return super().claim_many(job_ids)

    def await_seats(self, job_ids: Sequence[int]) -> None:
        chain, due = self.chain, self.chain.next_block_time()
        times = []
        for job_id in job_ids:
            try:
                if chain.market.job(job_id).status is not JobStatus.OPEN:
                    continue
            except ContractRevert:
                continue  # an unknown job: let the claim say so
            at = chain.market.eligible_from(job_id, self.address)
            if at is not None:
                times.append(at)
        if times and max(times) > due:
            if chain.devnet.kind is ChainKind.ANVIL:
                chain.warp(max(times))
            else:  # ganache sets no exact next timestamp: move the clock on and mine
                chain.sleep(max(times) - chain.now())


@dataclass(frozen=True)
class Base:
    deployment: Deployment
    token: str
    fot: str


def build_chain(devnet: Devnet, base: Base) -> Chain:
    w3 = connect(devnet.rpc_url)
    market = Market(w3, base.deployment.market)

    def actor(index: int) -> MarketActor:
        return MarketActor(market, TxSender(w3, devnet.accounts[index]))

    def provider(index: int) -> Provider:
        return Provider(market, TxSender(w3, devnet.accounts[index]))

    chain = Chain(
        devnet=devnet,
        w3=w3,
        deployment=base.deployment,
        market=market,
        token=bind(w3, "TestToken", base.token),
        fot=bind(w3, "FeeOnTransferToken", base.fot),
        owner=actor(0),
        treasury=devnet.accounts[1].address,
        requester=actor(2),
        requester2=actor(3),
        providers=[provider(index) for index in range(4, 9)],
        outsider=actor(9),
    )
    for each in chain.providers:
        each.chain = chain
    return chain


def deploy_base(devnet: Devnet) -> Base:
    """Market (ETH stake, 1% fee), two allow-listed tokens, funded requesters, staked providers."""
    w3 = connect(devnet.rpc_url)
    owner = TxSender(w3, devnet.accounts[0])
    deployment = deploy_market(
        owner,
        treasury=devnet.accounts[1].address,
        unbonding_period=UNBONDING,
        doubling_period=DEVNET_DOUBLING_PERIOD,
        fee_bps=FEE_BPS,
    )
    token, _ = deploy_contract(owner, "TestToken", "Test USD", "TUSD")
    fot, _ = deploy_contract(owner, "FeeOnTransferToken", 100)
    base = Base(deployment, token, fot)
    chain = build_chain(devnet, base)
    for address in (token, fot):
        chain.owner.send(chain.market.call("setPaymentToken", address, True))
    for requester in (chain.requester, chain.requester2):
        for contract in (chain.token, chain.fot):
            chain.send(requester, contract, "mint", requester.address, TOKEN_SUPPLY)
            chain.send(requester, contract, "approve", chain.market.address, 2**256 - 1)
    for index, provider in enumerate(chain.providers):
        provider.register(f"ipfs://provider-{index}")
        provider.stake(PROVIDER_STAKE)
    return base


def post(
    chain: Chain,
    *,
    replicas: int = 1,
    token: str = ETH,
    reward: int = ETHER,
    collateral: int = ETHER,
    requester: MarketActor | None = None,
    **windows: int,
) -> int:
    """Posts a job and returns its id."""
    params = JobParams(
        spec_hash=os.urandom(32),
        reward_per_replica=reward,
        replicas=replicas,
        token=token,
        collateral_per_replica=collateral,
        **windows,
    )
    job_id, _ = (requester or chain.requester).post_job(params)
    return job_id


def salt_for(provider: MarketActor, job_id: int) -> bytes:
    return Web3.keccak(text=f"salt/{provider.address}/{job_id}")


def commit(provider: MarketActor, job_id: int, result: bytes) -> TxResult:
    return provider.commit(job_id, commitment(job_id, provider.address, result, salt_for(provider, job_id)))


def reveal(provider: MarketActor, job_id: int, result: bytes) -> TxResult:
    return provider.reveal(job_id, result, salt_for(provider, job_id))


def result_hash(label: str) -> bytes:
    return Web3.keccak(text=label)
