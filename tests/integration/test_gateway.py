"""The provider's chain gateway on a real anvil: gas for the worst order of a batch, several
transactions in one block, reorgs that take mined transactions away, and transactions a previous
run left in the node's pool."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from marketplace.chain.rpc import RpcClient
from marketplace.chain.sender import Call, TxSender
from marketplace.protocol.hashing import commitment
from provider.gateway import ChainGateway, Mined, worst_gas
from tests.helpers import Chain, post, result_hash, salt_for


@pytest.fixture
def rpc(chain: Chain) -> Iterator[RpcClient]:
    client = RpcClient(chain.devnet.rpc_url)
    yield client
    client.close()


def gateway_of(chain: Chain, rpc: RpcClient, index: int) -> ChainGateway:
    return ChainGateway(chain.w3, rpc, chain.market, chain.devnet.accounts[index], finality_depth=4)


def collect(gateway: ChainGateway, count: int, timeout: float = 30.0) -> list[Mined]:
    found: list[Mined] = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        assert time.monotonic() < deadline, f"only {len(found)} of {count} transactions mined"
        found += gateway.poll()
        time.sleep(0.05)
    return found


def test_batches_get_gas_for_every_item_to_act(chain: Chain) -> None:
    """The worst order for each batch function: every item acts, the seats are the last to be
    taken, committed or revealed, and settlement pays and slashes every seat."""
    providers = chain.providers
    last = providers[-1]
    jobs = [post(chain, replicas=len(providers), reveal_window=100) for _ in range(3)]
    for job_id in jobs:
        for provider in providers[:-1]:
            provider.claim(job_id)
    used = {"claimJobs": last.claim_many(jobs).gas_used}
    good, bad = result_hash("good"), result_hash("bad")
    answers = {p.address: good if i < 3 else bad for i, p in enumerate(providers)}
    for provider in providers:
        hashes = [
            commitment(j, provider.address, answers[provider.address], salt_for(provider, j)) for j in jobs
        ]
        used["commitResults"] = provider.commit_many(jobs, hashes).gas_used
    for provider in providers:
        salts = [salt_for(provider, j) for j in jobs]
        used["revealResults"] = provider.reveal_many(jobs, [answers[provider.address]] * 3, salts).gas_used
    used["finalizeJobs"] = chain.outsider.finalize_many(jobs).gas_used
    singles = [post(chain, token=chain.token.address) for _ in range(3)]
    chain.providers[0].claim_many(singles)
    used["submitResults"] = chain.providers[0].submit_results(singles, [good] * 3).gas_used
    seats = {"finalizeJobs": 3 * len(providers)}
    for function, gas in used.items():
        assert gas <= worst_gas(function, 3, seats.get(function, 0)), function


def test_transactions_are_pipelined_into_one_block(chain: Chain, rpc: RpcClient) -> None:
    """On a chain with 2-second blocks, two claims sent one after the other land in one block."""
    jobs = [post(chain), post(chain)]
    gateway = gateway_of(chain, rpc, 4)
    chain.providers[0].await_seats(jobs)  # the draw lets account 4 claim both
    chain.devnet.mine()
    chain.devnet.call("evm_setAutomine", False)
    chain.devnet.call("evm_setIntervalMining", 2)
    try:
        for job_id in jobs:
            gateway.send("claim", chain.market.calls.claim_jobs([job_id]), [job_id])
        assert len(gateway.in_flight()) == 2  # nothing waited for the first receipt
        mined = collect(gateway, 2)
    finally:
        chain.devnet.call("evm_setIntervalMining", 0)
        chain.devnet.call("evm_setAutomine", True)
    assert all(m.result is not None for m in mined)
    assert len({m.result.block_number for m in mined if m.result is not None}) == 1
    assert [chain.market.job(job_id).claims for job_id in jobs] == [1, 1]


def test_a_reorg_that_takes_a_mined_claim_away_is_followed(chain: Chain, rpc: RpcClient) -> None:
    """The claim is sent again, mined again, and later transactions are not stuck behind its nonce."""
    first, second = post(chain), post(chain)
    chain.providers[1].await_seats([first, second])  # the draw lets account 5 claim both
    chain.devnet.mine()
    gateway = gateway_of(chain, rpc, 5)
    sent = gateway.send("claim", chain.market.calls.claim_jobs([first]), [first])
    (mined,) = collect(gateway, 1)
    assert mined.result is not None and chain.market.job(first).claims == 1
    chain.devnet.call("anvil_reorg", 1, [])  # the claim's block is replaced by one without it
    assert chain.market.job(first).claims == 0
    gateway.head()
    assert gateway.reorged() == [sent]
    assert gateway.in_flight() == [sent]  # sent again from its signed bytes
    again = collect(gateway, 1)
    assert again[0].result is not None and chain.market.job(first).claims == 1
    gateway.send("claim", chain.market.calls.claim_jobs([second]), [second])
    (later,) = collect(gateway, 1)
    assert later.result is not None and chain.market.job(second).claims == 1


def test_a_sender_whose_mined_transaction_was_reorged_away_is_not_stuck(chain: Chain) -> None:
    """Its cached nonce runs ahead of the chain: the gap is filled and the next transaction mined."""
    sender = TxSender(chain.w3, chain.devnet.accounts[9], receipt_timeout=20)
    transfer = Call(chain.devnet.accounts[3].address, b"", 1, label="transfer")
    sender.transact(transfer)
    chain.devnet.call("anvil_reorg", 1, [])
    count = chain.w3.eth.get_transaction_count(sender.address)
    started = time.monotonic()
    receipt = sender.transact(transfer)
    assert receipt["status"] == 1 and time.monotonic() - started < 10
    assert chain.w3.eth.get_transaction_count(sender.address) == count + 2  # the gap's filler, then ours


def test_a_previous_runs_unmined_claim_is_replaced_before_reconciling(chain: Chain, rpc: RpcClient) -> None:
    """A daemon killed with a claim still in the node's pool: the next run takes the nonce back, so
    the claim can never be mined after the new run decided the job is not its own."""
    job_id = post(chain)
    chain.providers[2].await_seats([job_id])  # the draw lets account 6 claim it
    chain.devnet.mine()
    address = chain.devnet.accounts[6].address
    mined_before = chain.w3.eth.get_transaction_count(address)
    chain.devnet.call("evm_setAutomine", False)
    try:
        claim = gateway_of(chain, rpc, 6).send("claim", chain.market.calls.claim_jobs([job_id]), [job_id])

        def mine_once_replaced() -> None:  # the node mines only after the claim left its pool
            for _ in range(200):
                if chain.devnet.call("eth_getTransactionByHash", claim.pending.tx_hash.to_0x_hex()) is None:
                    break
                time.sleep(0.05)
            chain.devnet.mine()

        miner = threading.Thread(target=mine_once_replaced)
        miner.start()
        gateway_of(chain, rpc, 6).settle_previous_run(timeout=4.0)
        miner.join()
    finally:
        chain.devnet.call("evm_setAutomine", True)
    assert chain.w3.eth.get_transaction_count(address) == mined_before + 1
    assert chain.market.job(job_id).claims == 0
