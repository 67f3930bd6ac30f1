"""The settlement planner: given what the chain says of the jobs a provider holds and what its
local state says, what to send next. Pure functions, no I/O: every rule has a unit test.

Times are the chain's: `ChainTime.next_block` is the earliest timestamp the next block can carry
(the latest block's plus the observed interval between blocks), so an action the contract allows
only after a deadline is planned only once a block that late can come, and one it allows only
until a deadline only while a block can still come in time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from marketplace.protocol.status import AssignmentStatus, JobStatus, Outcome, seat_outcome
from marketplace.protocol.views import AssignmentView, JobView, Settlement

from .state import Stage, WorkRecord

# Stages in which a transaction for the job is being sent.
SENDING = frozenset({Stage.CLAIMING, Stage.COMMITTING, Stage.REVEALING})
# Stages in which the provider holds a seat (and its collateral is locked).
HOLDING = frozenset({Stage.CLAIMED, Stage.COMPUTED, Stage.COMMITTED, Stage.REVEALED, *SENDING})


@dataclass(frozen=True)
class ChainTime:
    """The chain's clock as a provider sees it."""

    latest: int  # timestamp of the latest block
    interval: float  # observed seconds between blocks (at least 1)

    @property
    def next_block(self) -> int:
        """The earliest timestamp the next block can carry."""
        return self.latest + max(1, round(self.interval))


@dataclass
class SettlePlan:
    """What a settle round sends, decided from each held job's on-chain view."""

    submit: list[WorkRecord] = field(default_factory=list)
    commit: list[WorkRecord] = field(default_factory=list)
    reveal: list[WorkRecord] = field(default_factory=list)
    finalize: list[WorkRecord] = field(default_factory=list)
    cancel: list[WorkRecord] = field(default_factory=list)

    def any(self) -> bool:
        return any((self.submit, self.commit, self.reveal, self.finalize, self.cancel))


@dataclass(frozen=True)
class Conduct:
    """How the provider behaves where honesty is a choice (see byzantine.py)."""

    reveals: bool = True  # reveals what it committed
    copies: bool = False  # commits a copy of another provider's commitment instead of computing


def designated_finalizer(job_id: int, replicas: int) -> int:
    """The seat whose holder finalizes a job at once; the others wait `finalize_grace` first, so
    one finalization is sent, not one per provider."""
    return job_id % replicas


def plan(
    records: list[WorkRecord],
    views: Mapping[int, JobView],
    time: ChainTime,
    conduct: Conduct,
    *,
    waited: Callable[[int], float] = lambda _job_id: 0.0,
    finalize_grace: float = 0.0,
) -> SettlePlan:
    """What to send for `records` (none in a SENDING stage or ENDED) given their `views`.

    A provider that is not its job's designated finalizer finalizes once `waited(job_id)` (how long
    the job has been seen ready to finalize, seconds) reaches `finalize_grace`: by then the
    designated one has done it, unless it went away.
    """
    result = SettlePlan()
    for record in records:
        view = views.get(record.job_id)
        if view is None or view.status.terminal:
            continue
        action = next_action(record, view, time, conduct)
        if action == "finalize":
            designated = record.slot is None or record.slot == designated_finalizer(
                view.job_id, view.replicas
            )
            if not designated and waited(record.job_id) < finalize_grace:
                continue
        if action is not None:
            getattr(result, action).append(record)
    return result


def next_action(record: WorkRecord, view: JobView, time: ChainTime, conduct: Conduct) -> str | None:
    """The one thing to send for a held job now: submit, commit, reveal, finalize, cancel, or None."""
    stage, status = record.stage, view.status
    if status is JobStatus.OPEN:
        # The other seats stayed empty: once the claim window is over, cancelling frees the collateral.
        return "cancel" if time.next_block > view.deadline else None
    if status is JobStatus.RUNNING:
        if time.next_block > view.deadline:
            return None  # too late to commit: the job turns Revealing without this seat's result
        ready = stage is Stage.COMPUTED or (conduct.copies and stage is Stage.CLAIMED and view.replicas > 1)
        if not ready:
            return None
        return "submit" if view.replicas == 1 else "commit"
    if status is JobStatus.REVEALING:
        if stage is Stage.COMMITTED and conduct.reveals and time.next_block <= view.deadline:
            return "reveal"
        if view.reveals >= view.commits or time.next_block > view.deadline:
            return "finalize"
    return None


def reconciled(record: WorkRecord, view: JobView | None, seat: AssignmentView | None) -> WorkRecord | None:
    """The record set to what the chain shows (after a failed send, a crash or a reorg), or None
    when the job ended on-chain and its settlement must be read to say how."""
    status = seat.status if seat is not None else AssignmentStatus.NONE
    if view is None or status is AssignmentStatus.NONE:  # no seat: the claim never took
        return record.with_(stage=Stage.ENDED, outcome="lost", slot=None)
    if view.status.terminal:
        return None
    slot = seat.slot if seat is not None else record.slot
    if status is AssignmentStatus.CLAIMED:
        stage = Stage.COMPUTED if record.result_hash is not None else Stage.CLAIMED
    elif status is AssignmentStatus.COMMITTED:
        stage = Stage.COMMITTED
    else:
        stage = Stage.REVEALED
    return record.with_(stage=stage, outcome=None, slot=slot)


def settled(record: WorkRecord, settlement: Settlement, me: str) -> WorkRecord:
    """The record of a job that ended as `settlement` said, waiting for that to be final."""
    outcome = seat_outcome(
        settlement.status,
        winner=me in settlement.winners,
        # A copier's "reveal" was refused: it never revealed, whatever its local stage says.
        revealed=record.stage is Stage.REVEALED and record.error_code is None,
    )
    return record.with_(stage=Stage.ENDED, outcome=outcome.value)


def final_stage(record: WorkRecord) -> Stage:
    """The terminal stage an ENDED record takes once what ended it is final."""
    if record.outcome == "lost":
        return Stage.LOST
    if record.outcome == Outcome.CANCELLED:
        return Stage.CANCELLED
    return Stage.SETTLED
