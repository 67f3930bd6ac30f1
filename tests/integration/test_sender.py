"""The transaction sender: nonces under concurrency, dropped transactions, decoded reverts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from marketplace.chain.market import MarketActor
from marketplace.chain.sender import Call, TxSender
from marketplace.protocol.errors import TransactionTimeout
from tests.helpers import Chain, post


def transfer(chain: Chain, value: int = 1) -> Call:
    return Call(chain.outsider.address, b"", value, label="transfer")


def test_concurrent_sends_from_one_key_use_every_nonce_once(chain: Chain) -> None:
    sender = TxSender(chain.w3, chain.devnet.accounts[2])
    start = chain.w3.eth.get_transaction_count(sender.address)
    with ThreadPoolExecutor(max_workers=8) as pool:
        receipts = list(pool.map(lambda _: sender.transact(transfer(chain)), range(40)))
    nonces = sorted(int(chain.w3.eth.get_transaction(r["transactionHash"])["nonce"]) for r in receipts)
    assert nonces == list(range(start, start + 40))
    assert all(r["status"] == 1 for r in receipts)


def test_sender_recovers_when_another_process_used_the_key(chain: Chain) -> None:
    ours = TxSender(chain.w3, chain.devnet.accounts[2])
    ours.transact(transfer(chain))
    other = TxSender(chain.w3, chain.devnet.accounts[2])
    other.transact(transfer(chain))  # our cached nonce is now stale
    receipt = ours.transact(transfer(chain))
    assert receipt["status"] == 1


def test_dropped_transaction_is_rebroadcast_and_later_nonces_do_not_stall(chain: Chain) -> None:
    sender = TxSender(chain.w3, chain.devnet.accounts[2], poll_interval=0.05)
    chain.devnet.call("evm_setAutomine", False)
    try:
        first = sender.submit(transfer(chain), gas=21_000)
        second = sender.submit(transfer(chain), gas=21_000)
        chain.devnet.call("anvil_dropTransaction", first.tx_hash.to_0x_hex())
        assert chain.w3.eth.get_transaction_count(sender.address, "pending") == first.nonce  # a gap
        chain.devnet.call("evm_setAutomine", True)
        receipt = sender.wait(first, timeout=10)
        assert receipt["status"] == 1
        assert sender.wait(second, timeout=10)["status"] == 1
    finally:
        chain.devnet.call("evm_setAutomine", True)
    assert chain.w3.eth.get_transaction_count(sender.address) == second.nonce + 1


def test_wait_times_out_when_nothing_is_mined(chain: Chain) -> None:
    sender = TxSender(chain.w3, chain.devnet.accounts[2])
    chain.devnet.call("evm_setAutomine", False)
    try:
        pending = sender.submit(transfer(chain), gas=21_000)
        with pytest.raises(TransactionTimeout):
            sender.wait(pending, timeout=0.3)
    finally:
        chain.devnet.call("evm_setAutomine", True)
        chain.devnet.mine()


def test_revert_at_estimation_consumes_no_nonce(chain: Chain) -> None:
    from marketplace.protocol.reverts import NotRegistered

    job_id = post(chain)
    actor = MarketActor(chain.market, TxSender(chain.w3, chain.devnet.accounts[9]))
    nonce = chain.w3.eth.get_transaction_count(actor.address)
    with pytest.raises(NotRegistered) as raised:
        actor.claim(job_id)
    assert raised.value.provider == actor.address
    assert chain.w3.eth.get_transaction_count(actor.address, "pending") == nonce
    actor.sender.transact(transfer(chain))  # the next nonce is still usable


def test_revert_when_mined_is_decoded_from_a_replay(chain: Chain) -> None:
    from marketplace.protocol.reverts import JobNotInState

    job_id = post(chain)
    first, second = chain.providers[0], chain.providers[1]
    first.claim(job_id)  # the job is now full: the second claim, sent with fixed gas, reverts on-chain
    with pytest.raises(JobNotInState):
        second.sender.transact(chain.market.call("claimJob", job_id), gas=200_000)
