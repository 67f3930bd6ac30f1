"""Provider daemons against the real marketplace: honest ones are paid, every dishonest mode is
slashed, and jobs that cannot run are refused or fail without a result ever being committed.

One sandbox for the module: six daemons on one Ray. Each dishonest daemon accepts one workload
only, which just the two all-round honest providers also run, so a three-replica job of that
workload is claimed by exactly those three; dave runs the rest with them.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
import wasmtime

from marketplace.cli.sandbox import ProviderSpec
from marketplace.protocol.hashing import sha256
from marketplace.protocol.spec import parse_spec
from marketplace.protocol.status import JobStatus
from provider.state import LocalState, Stage, WorkRecord
from provider.workloads import example_module, run_job
from tests.e2e.conftest import COLLATERAL, REWARD, Market, builtin, eventually, open_market, wasm

FEE_BPS = 100  # what setup_devnet_market deploys with
HONEST = ("alice", "bob", "dave")
DISHONEST = {"wrong-result": ("liar", "iterated-sha256"), "no-reveal": ("mute", "monte-carlo-pi"),
             "copy": ("copier", "sort-dedup")}  # fmt: skip
PROVIDERS = [
    ProviderSpec("alice", 4),
    ProviderSpec("bob", 5),
    ProviderSpec("dave", 7, ("--workloads", "word-count,game-of-life,wasm")),
    *(
        ProviderSpec(name, account, ("--workloads", workload), byzantine=mode)
        for account, (mode, (name, workload)) in zip((6, 8, 9), DISHONEST.items(), strict=True)
    ),
]
TRAPPING_MODULE = """(module
  (memory (export "memory") 1)
  (func (export "alloc") (param i32) (result i32) i32.const 1024)
  (func (export "run") (param i32 i32) (result i64) unreachable))"""


@pytest.fixture(scope="module")
def market(sandbox_factory) -> Market:
    return open_market(sandbox_factory(PROVIDERS))


def text(label: str) -> bytes:
    return f"{label} the honest majority is paid {label}\n".encode() * 20


def check_result(
    market: Market, job_id: int, spec: dict[str, Any], inputs: list[bytes], module: bytes | None = None
) -> None:
    """The downloaded result hashes to the settled result hash and equals a local run."""
    data = market.requester.result(job_id)
    blobs = {sha256(blob).hex(): blob for blob in inputs}
    if module is not None:
        blobs[sha256(module).hex()] = module
    local = run_job(parse_spec({**spec, "inputs": [sha256(blob).hex() for blob in inputs]}), blobs)
    assert local.output == data


def test_honest_providers_are_paid_for_built_in_and_webassembly_jobs(market: Market) -> None:
    fnv, histogram = example_module("fnv1a64"), example_module("byte-histogram")
    market.api.upload(fnv)
    market.api.upload(histogram)
    life = builtin("game-of-life", {"width": 16, "height": 16, "generations": 20, "seed": 7}, 16 * 16 * 21)
    words = builtin("word-count", {"lowercase": True}, 10_000)
    posted = [
        (market.submit(words, [text("a"), text("b")]), words, [text("a"), text("b")], None),
        (market.submit(wasm(fnv, 1_000_000), [text("c")]), wasm(fnv, 1_000_000), [text("c")], fnv),
        (market.submit(life, replicas=3), life, [], None),
    ]
    counted = wasm(histogram, 2_000_000)
    posted.append((market.submit(counted, [text("d")], replicas=3), counted, [text("d")], histogram))
    honest = {market.address(name) for name in HONEST}
    for submitted, spec, inputs, module in posted:
        job_id = submitted.job_id
        assert market.wait_settled(job_id) is JobStatus.COMPLETED
        check_result(market, job_id, spec, inputs, module)
        (finalized,) = market.events(job_id, "JobFinalized")
        winners = set(finalized["winners"])
        assert winners <= honest and len(winners) == len(market.events(job_id, "JobClaimed"))
        paid = {
            e["account"]: int(e["amount"])
            for e in market.events(job_id, "Credited")
            if e["account"] in winners
        }
        assert paid == dict.fromkeys(winners, REWARD - REWARD * FEE_BPS // 10_000)
        assert not market.events(job_id, "Slashed")

    # Earnings flow out: every honest provider's credits are withdrawn once above the threshold.
    def withdrawals() -> set[str] | None:
        accounts = {e["account"] for e in market.all_events("Withdrawn")}
        return accounts if accounts & honest else None

    assert eventually(withdrawals, 30, "a provider to withdraw its earnings")


@pytest.mark.parametrize("mode", list(DISHONEST))
def test_each_dishonest_mode_is_slashed_and_the_honest_majority_paid(market: Market, mode: str) -> None:
    name, workload = DISHONEST[mode]
    specs = {
        "iterated-sha256": builtin(
            "iterated-sha256", {"seed": f"slash {time.time()}", "rounds": 5_000}, 5_000
        ),
        "monte-carlo-pi": builtin("monte-carlo-pi", {"seed": int(time.time()), "samples": 50_000}, 50_000),
        "sort-dedup": builtin("sort-dedup", {}, 10_000),
    }
    inputs = [b"b\na\nc\na\n" + str(time.time()).encode()] if workload == "sort-dedup" else []
    # A short reveal window: the silent provider is waited for that long before finalizing.
    job_id = market.submit(specs[workload], inputs, replicas=3, reveal_window=6).job_id
    assert market.wait_settled(job_id, timeout=90) is JobStatus.COMPLETED

    cheat = market.address(name)
    honest = {market.address("alice"), market.address("bob")}
    claimed = {e["provider"] for e in market.events(job_id, "JobClaimed")}
    assert claimed == honest | {cheat}
    (finalized,) = market.events(job_id, "JobFinalized")
    assert set(finalized["winners"]) == honest
    (slash,) = market.events(job_id, "Slashed")
    assert (slash["provider"], int(slash["amount"])) == (cheat, COLLATERAL)
    check_result(market, job_id, specs[workload], inputs)
    commits = {e["provider"]: e["commitment"] for e in market.events(job_id, "ResultCommitted")}
    reveals = {e["provider"]: e["resultHash"] for e in market.events(job_id, "ResultRevealed")}
    assert set(commits) == claimed  # every mode commits something
    if mode == "wrong-result":
        assert reveals[cheat] != finalized["resultHash"]
    elif mode == "no-reveal":
        assert cheat not in reveals
    else:  # the copy was of an honest commitment, and replaying the honest reveal could not match it
        assert commits[cheat] in {commits[provider] for provider in honest}
        assert cheat not in reveals
        assert "copied reveal refused" in (market.sandbox.workdir / "logs" / f"{name}.log").read_text()
    # The honest providers got their reward; the cheat's collateral went to the treasury, not to
    # anyone who took part in the job.
    credits = Counter(e["account"] for e in market.events(job_id, "Credited"))
    assert all(credits[provider] == 1 for provider in honest)
    slashed = [e for e in market.events(job_id, "Credited") if int(e["amount"]) == COLLATERAL]
    assert [e["account"] for e in slashed] == [market.sandbox.node.accounts[1].address]  # the treasury


def test_a_job_that_cannot_be_planned_is_refused_by_every_provider(market: Market) -> None:
    too_little_fuel = builtin("iterated-sha256", {"seed": "x", "rounds": 10_000}, 9_999)
    bad_arguments = builtin("game-of-life", {"width": -3, "height": 4, "generations": 2, "seed": 1}, 10_000)
    unknown = builtin("no-such-workload", {}, 100)
    ids = [market.submit(spec).job_id for spec in (too_little_fuel, bad_arguments, unknown)]
    time.sleep(4)  # several rounds of every daemon
    for job_id in ids:
        assert market.status(job_id) is JobStatus.OPEN
        assert not market.events(job_id, "JobClaimed")
    logs = "".join((market.sandbox.workdir / "logs" / f"{name}.log").read_text() for name in ("alice", "bob"))
    assert '"code": "fuel-exhausted"' in logs
    assert '"code": "invalid-arguments"' in logs and '"code": "unknown-workload"' in logs


def test_a_job_whose_workload_fails_while_running_is_never_committed(market: Market) -> None:
    module = bytes(wasmtime.wat2wasm(TRAPPING_MODULE))
    market.api.upload(module)
    job_id = market.submit(wasm(module, 100_000), [b"input"], run_timeout=5).job_id
    (claim,) = eventually(lambda: market.events(job_id, "JobClaimed"), 30, "the job to be claimed")
    name = next(spec.name for spec in PROVIDERS if market.address(spec.name) == claim["provider"])
    state = LocalState(market.sandbox.workdir / "providers" / name / "state.db")
    try:

        def failed() -> WorkRecord | None:
            record = state.get(job_id)
            return record if record is not None and record.stage is Stage.FAILED else None

        record = eventually(failed, 30, "the failure to be recorded")
    finally:
        state.close()
    assert (record.error_code, record.result_hash) == ("trap", None)
    assert "unreachable" in (record.error or "")
    time.sleep(6)  # past the commit deadline: nothing was ever committed
    assert not market.events(job_id, "ResultCommitted") and not market.events(job_id, "ResultRevealed")
