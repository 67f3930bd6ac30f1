"""Stateful property test: random interleavings of ComputeMarket transactions keep the books sound.

A hypothesis `RuleBasedStateMachine` drives requesters, providers, the owner and an outsider through
every protocol function (posting in ETH, a plain ERC-20 and a 1% fee-on-transfer ERC-20; claiming,
committing, revealing, submitting, finalizing, cancelling, withdrawing, registering, staking,
unstaking; single and batched) and the owner's settings (fee, treasury, allow-list, pause), with
time travel in between. Every example starts from a fresh anvil snapshot and reverts it at the end.

After every step it reads the chain (one JSON-RPC batch) and checks:
 1. solvency: for each token the market holds at least the open escrows + every stake (free,
    locked, unbonding; the stake token is ETH) + every unwithdrawn credit;
 2. credits only grow, except the one an account withdrew itself in that step (which drops to 0);
and, stronger than the protocol promises but true of this contract, that nothing is stranded
(balance == the sum above exactly, since nobody donates), that each account's locked stake is the
collateral of the unsettled jobs it holds a slot in, and that settled jobs stay settled.

Transactions the contract rejects are expected (a decoded ContractRevert); any other exception fails.
Block timestamps are pinned (one second per transaction, plus the time-travel rules), so a failing
sequence replays exactly. Run with -s to see what a run exercised; run longer with
HYPOTHESIS_EXAMPLES=500 .venv/bin/python -m pytest tests/integration/test_invariants.py -s
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import httpx
import pytest
from eth_utils import get_abi_output_types, to_checksum_address
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from web3 import Web3
from web3.contract import Contract

from marketplace.chain.devnet import Devnet
from marketplace.chain.market import MarketActor, TxResult
from marketplace.protocol.errors import ContractRevert
from marketplace.protocol.hashing import commitment
from marketplace.protocol.status import JobStatus
from marketplace.protocol.views import ETH, JobParams
from tests.helpers import UNBONDING, Base, Chain, build_chain, result_hash, salt_for

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "30"))  # ~100 s on two cores: web3 sends most of it
STEPS = 60
ADVANCE_MOVES = 3  # scripted moves per `advance` step

TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
# Errors a reveal with the wrong salt may hit before the commitment is even checked.
REVEAL_STATE_ERRORS = frozenset(
    {"JobNotInState", "DeadlinePassed", "NotAssigned", "AssignmentNotInState", "CommitmentMismatch"}
)


class Spec(NamedTuple):
    """A job to post; `token` indexes (ETH, token, fot)."""

    token: int
    replicas: int
    reward: int
    collateral: int | None  # None: the least the market accepts
    claim_window: int
    run_timeout: int
    reveal_window: int


SPECS = st.builds(
    Spec,
    token=st.integers(0, 2),
    replicas=st.integers(1, 3),
    reward=st.one_of(st.integers(1, 300), st.integers(1, 10**18)),
    # Mostly the market's minimum, sometimes anything (0 and small ones are refused: CollateralTooLow).
    collateral=st.one_of(st.none(), st.none(), st.just(0), st.integers(1, 1000), st.integers(1, 10**18)),
    claim_window=st.one_of(st.integers(0, 120), st.integers(1, 3600)),  # 0 is rejected: InvalidWindow
    run_timeout=st.one_of(st.integers(1, 120), st.integers(1, 3600)),
    reveal_window=st.one_of(st.integers(1, 120), st.integers(1, 3600)),
)
WHO = st.integers(0, 9)  # index into MarketMachine.everyone
CLAIMANT = st.integers(0, 6)  # index into MarketMachine.claimants
PICK = st.integers(0, 2**16)  # chooses among the candidates of an action
PICKS = st.lists(PICK, min_size=1, max_size=4)  # one pick per item of a batch
AIM = st.sampled_from([True, True, True, False])  # aim at something actionable, or at anything
LABELS = st.sampled_from(("good", "good", "bad-a", "bad-b"))  # honest twice as likely as each lie
# What the run exercised (outcome of every action, settlements, examples, steps); printed at the end.
COVERAGE: Counter[str] = Counter()


@dataclass(frozen=True)
class JobRow:
    token: str
    status: JobStatus
    replicas: int
    claims: int
    deadline: int  # end of the current phase (the reveal deadline once effectively Revealing)
    reward_per_replica: int
    collateral_per_replica: int


@dataclass(frozen=True)
class Books:
    """Everything the invariants need, read in one JSON-RPC batch at the latest block."""

    job_count: int
    balances: dict[str, int]  # token -> the market's balance
    jobs: dict[int, JobRow]
    stakes: dict[str, tuple[int, int, int]]  # account -> (free, locked, unbonding)
    credits: dict[tuple[str, str], int]  # (account, token) -> credit


_CALLDATA: dict[tuple[str, str, tuple[Any, ...]], str] = {}


def calldata(contract: Contract, function: str, *args: Any) -> str:
    """`contract.encode_abi`, memoized: web3's encoder costs milliseconds and the market outlives examples."""
    key = (contract.address, function, args)
    if key not in _CALLDATA:
        _CALLDATA[key] = contract.encode_abi(function, args=list(args))
    return _CALLDATA[key]


class BookReader:
    """Reads the market's books with raw batched eth_calls: ~50 reads per step cost one round trip."""

    def __init__(self, chain: Chain, accounts: Sequence[str], tokens: Sequence[str]) -> None:
        self.chain = chain
        self.accounts = list(accounts)
        self.tokens = list(tokens)
        self.market = chain.market.address
        self.client = httpx.Client(timeout=30.0)
        abi = {entry.get("name"): entry for entry in chain.market.contract.abi if entry["type"] == "function"}
        self.job_types = get_abi_output_types(abi["getJob"])
        self.provider_types = get_abi_output_types(abi["providerInfo"])
        contract = chain.market.contract
        self.credit_calls = {
            (account, token): calldata(contract, "credits", account, token)
            for account in self.accounts
            for token in self.tokens
        }
        self.provider_calls = {
            account: calldata(contract, "providerInfo", account) for account in self.accounts
        }
        self.job_count_call = calldata(contract, "jobCount")
        self.balance_calls = {
            token: calldata(chain.token, "balanceOf", self.market) for token in self.tokens if token != ETH
        }

    def rpc(self, method: str, *params: Any) -> Any:
        """A devnet control call over the kept-alive connection (Devnet.call opens a new one each time)."""
        response = self.client.post(
            self.chain.devnet.rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
        )
        response.raise_for_status()
        reply = response.json()
        assert "error" not in reply, f"{method} failed: {reply['error']}"
        return reply["result"]

    def close(self) -> None:
        self.client.close()

    def read(self, job_ids: Sequence[int]) -> Books:
        requests: list[tuple[str, list[Any]]] = [("eth_getBalance", [self.market, "latest"])]
        requests += [
            ("eth_call", [{"to": token, "data": data}, "latest"])
            for token, data in self.balance_calls.items()
        ]
        requests.append(("eth_call", [{"to": self.market, "data": self.job_count_call}, "latest"]))
        for job_id in job_ids:
            data = calldata(self.chain.market.contract, "getJob", job_id)
            requests.append(("eth_call", [{"to": self.market, "data": data}, "latest"]))
        requests += [
            ("eth_call", [{"to": self.market, "data": d}, "latest"]) for d in self.provider_calls.values()
        ]
        requests += [
            ("eth_call", [{"to": self.market, "data": d}, "latest"]) for d in self.credit_calls.values()
        ]

        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(requests)]
        response = self.client.post(self.chain.devnet.rpc_url, json=body)
        response.raise_for_status()
        replies = sorted(response.json(), key=lambda reply: reply["id"])
        errors = [reply["error"] for reply in replies if "error" in reply]
        assert not errors, f"view calls failed: {errors[:3]}"
        balances = {ETH: int(replies[0]["result"], 16)}
        raw = iter(bytes.fromhex(reply["result"].removeprefix("0x")) for reply in replies[1:])
        codec = self.chain.w3.codec
        for token in self.balance_calls:
            balances[token] = int.from_bytes(next(raw), "big")
        job_count = int.from_bytes(next(raw), "big")
        jobs = {}
        for job_id in job_ids:
            (view,) = codec.decode(self.job_types, next(raw))
            jobs[job_id] = JobRow(
                token=to_checksum_address(view[1]),
                status=JobStatus.from_code(view[2]),
                replicas=view[3],
                claims=view[4],
                deadline=view[7],
                reward_per_replica=view[8],
                collateral_per_replica=view[9],
            )
        stakes = {}
        for account in self.provider_calls:
            (info,) = codec.decode(self.provider_types, next(raw))
            stakes[account] = (info[1], info[2], info[3])
        credits = {key: int.from_bytes(next(raw), "big") for key in self.credit_calls}
        return Books(job_count, balances, jobs, stakes, credits)


@dataclass
class JobModel:
    requester: str
    token: str
    replicas: int
    claimers: list[str] = field(default_factory=list)


class MarketMachine(RuleBasedStateMachine):
    """Random protocol traffic against one deployed market; the books are checked after each step."""

    crosschecked = False  # the raw batch reader agreed with the Market bindings once this run

    def __init__(self, devnet: Devnet, base: Base) -> None:
        super().__init__()
        self.devnet = devnet
        self.snapshot = devnet.snapshot()
        self.chain = build_chain(devnet, base)
        chain = self.chain
        assert chain.market.stake_token == ETH
        self.tokens = [ETH, chain.token.address, chain.fot.address]
        self.fot_fee_bps = int(chain.fot.functions.FEE_BPS().call())
        # Plain actors for the providers: the machine keeps its own clock, so a claim the draw does not
        # allow yet reverts (the test providers' own warping to their turn would move that clock).
        self.providers = [chain.actor(index) for index in range(4, 9)]
        # One actor per account (each has its own nonce cache): 0 owner, 1 treasury, 2-3 requesters,
        # 4-8 providers, 9 outsider.
        self.everyone: list[MarketActor] = [
            chain.owner,
            chain.actor(1),
            chain.requester,
            chain.requester2,
            *self.providers,
            chain.outsider,
        ]
        self.by_address: dict[str, MarketActor] = {actor.address: actor for actor in self.everyone}
        self.requesters = [chain.requester, chain.requester2]
        # Who tries to claim: the staked providers, the outsider (stakes only if it registers), a requester.
        self.claimants = [*self.providers, chain.outsider, chain.requester]
        self.reader = BookReader(chain, [actor.address for actor in self.everyone], self.tokens)
        self.clock = chain.now()
        self.spec_counter = 0
        self.idle_moves = 0  # scripted moves that found no job to move
        self.model: dict[int, JobModel] = {}
        # (job, provider) -> the (result, salt) it committed, None when its commitment cannot be opened
        self.sealed: dict[tuple[int, str], tuple[bytes, bytes] | None] = {}
        self.revealed: set[tuple[int, str]] = set()
        self.salt_tried: set[tuple[int, str]] = set()  # slots whose wrong-salt reveal `advance` tried
        self.withdrawn: set[tuple[str, str]] = set()  # credits withdrawn by their owner this step
        self.last_revert: ContractRevert | None = None
        self.paused = False
        self.disallowed: set[str] = set()
        self.books = self.reader.read([])
        COVERAGE["examples"] += 1

    def teardown(self) -> None:
        self.reader.close()
        self.devnet.revert(self.snapshot)

    # ── plumbing ──

    def _send(self, label: str, action: Callable[[], TxResult]) -> TxResult | None:
        """Sends one transaction at the next pinned second; a contract revert returns None."""
        self.clock += 1
        self.reader.rpc("evm_setNextBlockTimestamp", self.clock)  # what Chain.warp does, on a kept connection
        self.last_revert = None
        try:
            result = action()
        except ContractRevert as exc:
            self.last_revert = exc
            self._note(f"{label}: {exc.error_name}")
            return None
        self._note(f"{label}: ok")
        for ev in result.events:
            if ev.name == "JobPosted":
                self.model[ev["jobId"]] = JobModel(
                    ev["requester"], to_checksum_address(ev["token"]), ev["replicas"]
                )
            elif ev.name == "JobClaimed":
                self.model[ev["jobId"]].claimers.append(ev["provider"])
            elif ev.name == "ResultRevealed":
                self.revealed.add((ev["jobId"], ev["provider"]))
            elif ev.name == "JobFinalized":
                self._note(f"settled: {JobStatus(ev['outcome'])}")
            elif ev.name in ("Slashed", "BatchItemSkipped", "JobCancelled", "Withdrawn"):
                self._note(ev.name)
            elif ev.name == "Credited":
                token = {ETH: "ETH", self.tokens[1]: "token", self.tokens[2]: "fot"}[ev["token"]]
                self._note(f"Credited in {token} to the {self._role(ev['account'])}")
        return result

    def _role(self, account: str) -> str:
        index = [str(actor.address) for actor in self.everyone].index(account)
        return ["owner", "treasury", "requester", "requester", *["provider"] * 5, "outsider"][index]

    @staticmethod
    def _note(what: str) -> None:
        COVERAGE[what] += 1

    def _travel_to(self, timestamp: int) -> None:
        if timestamp > self.clock:
            self.clock = timestamp
            self.reader.rpc("evm_setNextBlockTimestamp", timestamp)  # Chain.warp + Devnet.mine
            self.reader.rpc("evm_mine")

    def _params(self, spec: Spec) -> JobParams:
        self.spec_counter += 1
        return JobParams(
            spec_hash=Web3.keccak(text=f"spec/{self.spec_counter}"),
            reward_per_replica=spec.reward,
            replicas=spec.replicas,
            token=self.tokens[spec.token],
            collateral_per_replica=spec.collateral,
            claim_window=spec.claim_window,
            run_timeout=spec.run_timeout,
            reveal_window=spec.reveal_window,
        )

    def _seal(
        self, job_id: int, provider: MarketActor, label: str, kind: str
    ) -> tuple[bytes, tuple[bytes, bytes] | None]:
        """The commitment to send and what to remember for the reveal (None: cannot be opened)."""
        if kind == "zero":
            return b"\x00" * 32, None
        if kind == "garbage":
            return Web3.keccak(text=f"garbage/{job_id}/{provider.address}"), None
        salt = salt_for(provider, job_id)
        result = result_hash(label)
        return commitment(job_id, provider.address, result, salt), (result, salt)

    def _record_commits(self, result: TxResult, intents: dict[int, tuple[bytes, bytes] | None]) -> None:
        for ev in result.named("ResultCommitted"):
            self.sealed[(ev["jobId"], ev["provider"])] = intents[ev["jobId"]]

    def _opening(self, job_id: int, provider: MarketActor) -> tuple[bytes, bytes]:
        """What the provider committed on this job, or an honest guess when it never sealed one."""
        return self.sealed.get((job_id, provider.address)) or (
            result_hash("good"),
            salt_for(provider, job_id),
        )

    # ── choosing what to act on ──
    #
    # Most actions are aimed at something that can make progress (an Open job to claim, a committed
    # slot of a job in its reveal phase, ...), judged from the books read after the previous step;
    # the rest hit any job with any account, to exercise the rejections too.

    def _jobs_in(self, *statuses: JobStatus) -> list[int]:
        return [job_id for job_id, row in self.books.jobs.items() if row.status in statuses]

    def _any_job(self, pick: int) -> int:
        return sorted(self.model)[pick % len(self.model)]

    def _anyone_for(self, job_id: int, pick: int) -> MarketActor:
        """A slot holder of the job or any would-be provider."""
        pool = [self.by_address[a] for a in self.model[job_id].claimers] + self.claimants
        return pool[pick % len(pool)]

    def _seats(self, statuses: Sequence[JobStatus], want: str) -> list[tuple[int, MarketActor]]:
        """Slots of jobs in `statuses` whose holder has `want` to do next: commit, reveal or submit."""
        seats = []
        for job_id in self._jobs_in(*statuses):
            for address in self.model[job_id].claimers:
                key = (job_id, address)
                ready = {
                    "commit": key not in self.sealed,
                    "reveal": self.sealed.get(key) is not None and key not in self.revealed,
                    "submit": self.model[job_id].replicas == 1 and key not in self.sealed,
                }[want]
                if ready:
                    seats.append((job_id, self.by_address[address]))
        return seats

    def _one_seat(
        self, pick: int, aim: bool, statuses: Sequence[JobStatus], want: str
    ) -> tuple[int, MarketActor]:
        seats = self._seats(statuses, want) if aim else []
        if seats:
            return seats[pick % len(seats)]
        job_id = self._any_job(pick)
        return job_id, self._anyone_for(job_id, pick // 7)

    def _batch_of_seats(
        self, picks: list[int], aim: bool, statuses: Sequence[JobStatus], want: str
    ) -> tuple[MarketActor, list[int]]:
        """One provider and up to len(picks) jobs it can act on (aimed), or any jobs (not aimed)."""
        seats = self._seats(statuses, want) if aim else []
        if seats:
            provider = seats[picks[0] % len(seats)][1]
            return provider, [job_id for job_id, holder in seats if holder is provider][: len(picks)]
        job_ids = [self._any_job(pick) for pick in picks]
        return self._anyone_for(job_ids[0], picks[0] // 7), job_ids

    # ── the scripted path ──

    @rule()
    def advance(self) -> None:
        """Three scripted moves, the books checked after each: the oldest unsettled job that can move
        takes its next step (claim, or cancel once its claim window is over; commit, or submit for
        even-numbered single-replica jobs; reveal; finalize), and with none a credit is withdrawn or
        a new job posted.
        The providers keep to the protocol but not all tell the truth (see `_next_step`).
        Random traffic alone rarely carries a replicated job through to settlement before its
        windows run out. (Hypothesis also tends to draw this rule most often: it comes first in its
        rule order, fewest arguments then name, which simple draws favour.)"""
        for move in range(ADVANCE_MOVES):
            if move:
                self.books_are_sound()
            self._scripted_move()

    def _scripted_move(self) -> None:
        for job_id in self._jobs_in(JobStatus.OPEN, JobStatus.RUNNING, JobStatus.REVEALING):
            move = self._next_step(job_id)
            if move is not None:
                label, send, intent = move
                self._note("advance")
                result = self._send(label, send)
                if result and label == "commitResult":
                    self._record_commits(result, {job_id: intent})
                if label == "revealResult (wrong salt)":
                    assert result is None, f"job {job_id}: a reveal with the wrong salt was accepted"
                    assert self.last_revert is not None
                    assert self.last_revert.error_name == "CommitmentMismatch", self.last_revert
                return
        # Nothing in flight can move: every other time someone withdraws a credit, else a requester
        # posts a fresh job, cycling through tokens and sizes.
        self.idle_moves += 1
        if self.idle_moves % 2 and any(self.books.credits.values()):
            self.withdraw(pick=self.idle_moves, token=0)
            return
        n = len(self.model)
        spec = Spec(n % 3, 1 + n % 3, 10**6 + n, (n % 2) * 10**15, 3600, 3600, 3600)
        self._note("advance")
        self._send("postJob", lambda: self.requesters[n % 2].post_job(self._params(spec))[1])

    def _next_step(
        self, job_id: int
    ) -> tuple[str, Callable[[], TxResult], tuple[bytes, bytes] | None] | None:
        row, model = self.books.jobs[job_id], self.model[job_id]
        late = self.clock + 1 > row.deadline  # the next transaction is past the current phase
        if row.status is JobStatus.OPEN:
            if late:
                requester = self.by_address[model.requester]
                return "cancelJob", partial(requester.cancel, job_id), None
            providers = self.providers
            for actor in providers[job_id % 5 :] + providers[: job_id % 5]:  # a different line-up per job
                if actor.address in model.claimers:
                    continue
                turn = self.chain.market.eligible_from(job_id, actor.address)  # the draw's say
                if turn is None or turn > row.deadline:
                    continue
                self._travel_to(turn - 1)  # its claim is the next transaction, a second later
                return "claimJob", partial(actor.claim, job_id), None
            return None
        seats = [(address, self.by_address[address]) for address in model.claimers]
        if row.status is JobStatus.RUNNING:
            for address, actor in seats:
                if late or (job_id, address) in self.sealed:
                    continue
                # Providers 0-2 are honest, provider 3 always lies, provider 4 ignores odd-numbered
                # jobs (and is slashed for it once the commit deadline passes).
                personality = self.providers.index(actor) if actor in self.providers else 0
                if personality == 4 and job_id % 2:
                    continue
                label = "bad-a" if personality == 3 else "good"
                if model.replicas == 1 and job_id % 2 == 0:
                    return "submitResult", partial(actor.submit_result, job_id, result_hash(label)), None
                sealed, intent = self._seal(job_id, actor, label, "sealed")
                return "commitResult", partial(actor.commit, job_id, sealed), intent
            return None
        unrevealed = [
            (address, actor)
            for address, actor in seats
            if (job_id, address) in self.sealed and (job_id, address) not in self.revealed
        ]
        if unrevealed and not late:
            for address, actor in unrevealed:
                opening = self.sealed[(job_id, address)]
                if opening is None:
                    continue
                if job_id % 3 == 0 and (job_id, address) not in self.salt_tried:
                    # Every third job, each provider first tries a wrong salt: CommitmentMismatch.
                    self.salt_tried.add((job_id, address))
                    wrong = Web3.keccak(b"not-the-salt" + opening[1])
                    return "revealResult (wrong salt)", partial(actor.reveal, job_id, opening[0], wrong), None
                return "revealResult", partial(actor.reveal, job_id, *opening), None
            return None  # only unopenable commitments left: settlement waits for the reveal deadline
        return "finalizeJob", partial(self.chain.outsider.finalize, job_id), None

    # ── requesters ──

    @initialize(requester=st.integers(0, 1), specs=st.lists(SPECS, min_size=1, max_size=4))
    def post_first_jobs(self, requester: int, specs: list[Spec]) -> None:
        """Every example starts with some jobs (each claim window at least a second and the least
        collateral the market accepts, so they post)."""
        specs = [spec._replace(claim_window=max(spec.claim_window, 1), collateral=None) for spec in specs]
        self.post_jobs(requester, specs)
        assert self.model, "the opening jobs did not post"

    @rule(requester=st.integers(0, 1), spec=SPECS)
    def post_job(self, requester: int, spec: Spec) -> None:
        actor = self.requesters[requester]
        self._send("postJob", lambda: actor.post_job(self._params(spec))[1])

    @rule(requester=st.integers(0, 1), specs=st.lists(SPECS, min_size=1, max_size=3))
    def post_jobs(self, requester: int, specs: list[Spec]) -> None:
        actor = self.requesters[requester]
        self._send("postJobs", lambda: actor.post_jobs([self._params(spec) for spec in specs])[1])

    @precondition(lambda self: self.model)
    @rule(pick=PICK, aim=AIM, who=WHO)
    def cancel_job(self, pick: int, aim: bool, who: int) -> None:
        """By the job's requester, by a slot holder, or by somebody with no say in it."""
        open_jobs = self._jobs_in(JobStatus.OPEN) if aim else []
        job_id = open_jobs[pick % len(open_jobs)] if open_jobs else self._any_job(pick)
        if who < 5:
            actor = self.by_address[self.model[job_id].requester]
        elif who < 8:
            actor = self._anyone_for(job_id, who - 5)
        else:
            actor = self.everyone[pick % len(self.everyone)]
        self._send("cancelJob", lambda: actor.cancel(job_id))

    # ── providers ──

    @precondition(lambda self: self.model)
    @rule(pick=PICK, aim=AIM)
    def claim_job(self, pick: int, aim: bool) -> None:
        options = [
            (job_id, actor)
            for job_id in self._jobs_in(JobStatus.OPEN)
            for actor in self.claimants[:6]
            if actor.address not in self.model[job_id].claimers
        ]
        if aim and options:
            job_id, actor = options[pick % len(options)]
        else:
            job_id, actor = self._any_job(pick), self.claimants[pick % len(self.claimants)]
        self._send("claimJob", lambda: actor.claim(job_id))

    @precondition(lambda self: self.model)
    @rule(picks=PICKS, aim=AIM)
    def claim_jobs(self, picks: list[int], aim: bool) -> None:
        actor = self.claimants[picks[0] % len(self.claimants)]
        open_jobs = [j for j in self._jobs_in(JobStatus.OPEN) if actor.address not in self.model[j].claimers]
        if aim and open_jobs:
            job_ids = [open_jobs[pick % len(open_jobs)] for pick in picks]
            job_ids = list(dict.fromkeys(job_ids))  # a duplicate would revert the batch: AlreadyClaimed
        else:
            job_ids = [self._any_job(pick) for pick in picks]
        self._send("claimJobs", lambda: actor.claim_many(job_ids))

    @precondition(lambda self: self.model)
    @rule(
        pick=PICK,
        aim=AIM,
        label=LABELS,
        kind=st.sampled_from(["sealed", "sealed", "sealed", "garbage", "zero"]),
    )
    def commit_result(self, pick: int, aim: bool, label: str, kind: str) -> None:
        job_id, provider = self._one_seat(pick, aim, [JobStatus.RUNNING], "commit")
        sealed, intent = self._seal(job_id, provider, label, kind)
        result = self._send("commitResult", lambda: provider.commit(job_id, sealed))
        if result:
            self._record_commits(result, {job_id: intent})

    @precondition(lambda self: self.model)
    @rule(picks=PICKS, aim=AIM, label=LABELS)
    def commit_results(self, picks: list[int], aim: bool, label: str) -> None:
        provider, job_ids = self._batch_of_seats(picks, aim, [JobStatus.RUNNING], "commit")
        seals = {job_id: self._seal(job_id, provider, label, "sealed") for job_id in job_ids}
        result = self._send(
            "commitResults", lambda: provider.commit_many(job_ids, [seals[job_id][0] for job_id in job_ids])
        )
        if result:
            self._record_commits(result, {job_id: seal[1] for job_id, seal in seals.items()})

    @precondition(lambda self: self.model)
    @rule(pick=PICK, aim=AIM, right_salt=st.sampled_from([True, True, True, False]))
    def reveal_result(self, pick: int, aim: bool, right_salt: bool) -> None:
        job_id, provider = self._one_seat(pick, aim, [JobStatus.REVEALING], "reveal")
        revealed, salt = self._opening(job_id, provider)
        if not right_salt:
            salt = Web3.keccak(b"not-the-salt" + salt)
        result = self._send("revealResult", lambda: provider.reveal(job_id, revealed, salt))
        if not right_salt:
            assert result is None, f"job {job_id}: a reveal with the wrong salt was accepted"
            assert self.last_revert is not None
            assert self.last_revert.error_name in REVEAL_STATE_ERRORS, self.last_revert
            # A committed slot in its reveal phase, before the deadline: only the salt is wrong.
            seat_ready = (job_id, provider) in self._seats([JobStatus.REVEALING], "reveal")
            if seat_ready and self.clock <= self.books.jobs[job_id].deadline:
                assert self.last_revert.error_name == "CommitmentMismatch", self.last_revert

    @precondition(lambda self: self.model)
    @rule(picks=PICKS, aim=AIM)
    def reveal_results(self, picks: list[int], aim: bool) -> None:
        provider, job_ids = self._batch_of_seats(picks, aim, [JobStatus.REVEALING], "reveal")
        openings = [self._opening(job_id, provider) for job_id in job_ids]
        self._send(
            "revealResults",
            lambda: provider.reveal_many(job_ids, [o[0] for o in openings], [o[1] for o in openings]),
        )

    @precondition(lambda self: self.model)
    @rule(pick=PICK, aim=AIM, label=LABELS)
    def submit_result(self, pick: int, aim: bool, label: str) -> None:
        job_id, provider = self._one_seat(pick, aim, [JobStatus.RUNNING], "submit")
        self._send("submitResult", lambda: provider.submit_result(job_id, result_hash(label)))

    @precondition(lambda self: self.model)
    @rule(picks=PICKS, aim=AIM, label=LABELS)
    def submit_results(self, picks: list[int], aim: bool, label: str) -> None:
        provider, job_ids = self._batch_of_seats(picks, aim, [JobStatus.RUNNING], "submit")
        hashes = [result_hash(label)] * len(job_ids)
        self._send("submitResults", lambda: provider.submit_results(job_ids, hashes))

    # ── anybody ──

    @precondition(lambda self: self.model)
    @rule(pick=PICK, aim=AIM, who=WHO)
    def finalize_job(self, pick: int, aim: bool, who: int) -> None:
        ready = self._jobs_in(JobStatus.REVEALING) if aim else []
        job_id = ready[pick % len(ready)] if ready else self._any_job(pick)
        actor = self.everyone[who]
        self._send("finalizeJob", lambda: actor.finalize(job_id))

    @precondition(lambda self: self.model)
    @rule(picks=PICKS, aim=AIM, who=WHO)
    def finalize_jobs(self, picks: list[int], aim: bool, who: int) -> None:
        ready = self._jobs_in(JobStatus.REVEALING) if aim else []
        job_ids = [ready[pick % len(ready)] if ready else self._any_job(pick) for pick in picks]
        actor = self.everyone[who]
        self._send("finalizeJobs", lambda: actor.finalize_many(job_ids))

    @rule(pick=PICK, token=st.integers(0, 2))
    def withdraw(self, pick: int, token: int) -> None:
        """Mostly an account that has a credit (an odd `pick`), sometimes anyone (NothingToWithdraw)."""
        owed = sorted(key for key, amount in self.books.credits.items() if amount)
        if owed and pick % 2:
            account, token_address = owed[pick % len(owed)]
        else:
            account, token_address = self.everyone[pick % len(self.everyone)].address, self.tokens[token]
        actor = self.by_address[account]
        amount = self.books.credits[(account, token_address)]
        before = self._wallet(account, token_address)
        result = self._send("withdraw", lambda: actor.withdraw(token_address))
        if result is None:
            return
        self.withdrawn.add((account, token_address))
        assert result.event("Withdrawn")["amount"] == amount
        received = self._wallet(account, token_address) - before
        if token_address == ETH:
            received += result.gas_used * int(result.receipt["effectiveGasPrice"])
        elif token_address == self.chain.fot.address:
            amount -= amount * self.fot_fee_bps // 10_000  # the token burns its fee in transit
        assert received == amount, f"{account} withdrew {amount} of {token_address} but received {received}"

    def _wallet(self, account: str, token: str) -> int:
        if token == ETH:
            return self.chain.eth_balance(account)
        contract = self.chain.token if token == self.chain.token.address else self.chain.fot
        return self.chain.token_balance(contract, account)

    # ── staking ──

    @rule(who=WHO)
    def register(self, who: int) -> None:
        actor = self.everyone[who]
        self._send("registerProvider", lambda: actor.register(f"ipfs://machine-{who}"))

    @rule(who=CLAIMANT, amount=st.one_of(st.just(0), st.integers(1, 10**6), st.integers(1, 10**18)))
    def stake(self, who: int, amount: int) -> None:
        actor = self.claimants[who]
        self._send("stake", lambda: actor.stake(amount))

    @rule(who=CLAIMANT, share=st.sampled_from(["zero", "quarter", "all", "too-much"]))
    def request_unstake(self, who: int, share: str) -> None:
        actor = self.claimants[who]
        free = self.books.stakes[actor.address][0]
        amount = {"zero": 0, "quarter": free // 4, "all": free, "too-much": free + 1}[share]
        self._send("requestUnstake", lambda: actor.request_unstake(amount))

    @rule(pick=PICK, aim=AIM)
    def withdraw_stake(self, pick: int, aim: bool) -> None:
        unbonding = [a for a, (_, _, amount) in sorted(self.books.stakes.items()) if amount] if aim else []
        actor = self.by_address[unbonding[pick % len(unbonding)]] if unbonding else self.claimants[pick % 7]
        self._send("withdrawStake", actor.withdraw_stake)

    # ── owner ──

    @rule(
        action=st.sampled_from(["fee", "treasury", "token", "pause"]),
        value=st.integers(0, 1100),
        intruder=st.sampled_from([False, False, False, True]),
    )
    def admin(self, action: str, value: int, intruder: bool) -> None:
        """Owner settings; from the outsider every one of them must revert."""
        market = self.chain.market
        token = self.tokens[1 + value % 2]
        if action == "fee":
            call = market.call("setFee", value)  # above 1000: FeeTooHigh
        elif action == "treasury":
            call = market.call("setTreasury", self.everyone[value % len(self.everyone)].address)
        elif action == "token":
            call = market.call("setPaymentToken", token, False)
        else:
            call = market.call("pause")
        actor = self.chain.outsider if intruder else self.chain.owner
        result = self._send(f"admin {action}", lambda: actor.send(call))
        if intruder:
            assert result is None, f"the outsider could {action}"
        elif result is not None and action == "token":
            self.disallowed.add(token)
        elif result is not None and action == "pause":
            self.paused = True

    @precondition(lambda self: self.paused or self.disallowed)
    @rule()
    def restore(self) -> None:
        """Unpauses and re-allows the payment tokens, so a pause does not starve the rest of the run."""
        owner, market = self.chain.owner, self.chain.market
        if self.paused:
            assert self._send("unpause", partial(owner.send, market.call("unpause")))
            self.paused = False
        for token in sorted(self.disallowed):
            assert self._send("allow token", partial(owner.send, market.call("setPaymentToken", token, True)))
        self.disallowed.clear()

    # ── time ──

    @rule(seconds=st.integers(0, 2000))
    def sleep(self, seconds: int) -> None:
        self._travel_to(self.clock + seconds)

    @precondition(lambda self: self.model)
    @rule(pick=PICK, offset=st.integers(-1, 1))
    def sleep_to_deadline(self, pick: int, offset: int) -> None:
        """The next transaction lands one second before, on, or one second after a job's current deadline."""
        live = self._jobs_in(JobStatus.OPEN, JobStatus.RUNNING, JobStatus.REVEALING)
        job_id = live[pick % len(live)] if live else self._any_job(pick)
        self._travel_to(self.chain.market.job(job_id).deadline + offset - 1)

    @precondition(lambda self: any(unbonding for _, _, unbonding in self.books.stakes.values()))
    @rule()
    def sleep_past_unbonding(self) -> None:
        self._travel_to(self.clock + UNBONDING + 1)

    # ── invariants ──

    @invariant()
    def books_are_sound(self) -> None:
        COVERAGE["checks (steps + 1 per example)"] += 1
        before, now = self.books, self.reader.read(sorted(self.model))
        assert now.job_count == len(self.model), "jobCount disagrees with the JobPosted events"

        # 2. A credit never shrinks, except its owner's own withdrawal this step, which empties it.
        for key, amount in now.credits.items():
            if key in self.withdrawn:
                assert amount == 0, f"{key} still has {amount} after withdrawing"
            else:
                assert amount >= before.credits[key], (
                    f"credit {key} fell from {before.credits[key]} to {amount}"
                )

        # 1. Solvency, per token.
        owed = dict.fromkeys(self.tokens, 0)
        for job in now.jobs.values():
            if job.status not in TERMINAL:
                owed[job.token] += job.reward_per_replica * job.replicas
        for free, locked_stake, unbonding in now.stakes.values():
            owed[ETH] += free + locked_stake + unbonding
        for (_, token), amount in now.credits.items():
            owed[token] += amount
        for token in self.tokens:
            assert now.balances[token] >= owed[token], (
                f"insolvent in {token}: holds {now.balances[token]}, owes {owed[token]}"
            )
            # Stronger: nobody donates here, so every unit the market holds is owed to somebody.
            assert now.balances[token] == owed[token], (
                f"{now.balances[token] - owed[token]} of {token} is owed to nobody"
            )

        # Locked stake is exactly the collateral of the unsettled jobs the account holds a slot in.
        locked: dict[str, int] = dict.fromkeys(now.stakes, 0)
        for job_id, job in now.jobs.items():
            model = self.model[job_id]
            assert job.claims == len(model.claimers), f"job {job_id}: claims disagree with JobClaimed events"
            if job.status not in TERMINAL:
                for provider in model.claimers:
                    locked[provider] += job.collateral_per_replica
        for account, (_, locked_stake, _) in now.stakes.items():
            assert locked_stake == locked[account], (
                f"{account} has {locked_stake} locked, expected {locked[account]}"
            )

        # A settled job stays settled.
        for job_id, job in before.jobs.items():
            if job.status in TERMINAL:
                assert now.jobs[job_id].status == job.status, f"job {job_id} left {job.status}"

        if not MarketMachine.crosschecked and now.jobs:
            self._crosscheck(now)
        self.books = now
        self.withdrawn.clear()

    def _crosscheck(self, books: Books) -> None:
        """The raw batch reader agrees with the typed Market bindings (done once per run)."""
        market, chain = self.chain.market, self.chain
        assert books.balances[ETH] == chain.eth_balance(market.address)
        assert books.balances[chain.token.address] == chain.token_balance(chain.token, market.address)
        assert books.balances[chain.fot.address] == chain.token_balance(chain.fot, market.address)
        for job_id, row in books.jobs.items():
            view = market.job(job_id)
            assert (row.token, row.status, row.replicas, row.claims) == (
                to_checksum_address(view.token),
                view.status,
                view.replicas,
                view.claims,
            )
            assert (row.reward_per_replica, row.collateral_per_replica) == (
                view.reward_per_replica,
                view.collateral_per_replica,
            )
        for account, stake in books.stakes.items():
            info = market.provider(account)
            assert stake == (info.free_stake, info.locked_stake, info.unbonding)
        for (account, token), amount in books.credits.items():
            assert amount == market.credits(account, token)
        MarketMachine.crosschecked = True
        COVERAGE["raw reads cross-checked against the Market views"] += 1


@pytest.mark.slow
def test_market_books_stay_sound(devnet: Devnet, base: Base) -> None:
    COVERAGE.clear()
    MarketMachine.crosschecked = False
    started = time.monotonic()
    run_state_machine_as_test(
        lambda: MarketMachine(devnet, base),  # type: ignore[arg-type]  # a factory is fine
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
    print(f"\n{time.monotonic() - started:.0f}s; what the run exercised:")
    for what, count in sorted(COVERAGE.items()):
        print(f"  {count:6d}  {what}")
    assert MarketMachine.crosschecked, "no example got far enough to cross-check the raw reads"
