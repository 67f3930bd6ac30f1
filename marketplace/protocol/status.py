"""Statuses of jobs and seats as the contract defines them, and the rules read off them: which
statuses are terminal, the effective status of a job at a given time, and what a settled job
meant for each seat holder.

The enums carry the lower-case names the API and the logs show; `code` is the contract's number.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class ContractEnum(StrEnum):
    """A Solidity enum: members in the contract's order, the first one numbered `_first_code`."""

    @classmethod
    def _first_code(cls) -> int:
        return 0

    @property
    def code(self) -> int:
        return list(type(self)).index(self) + self._first_code()

    @classmethod
    def from_code(cls, code: int | Self) -> Self:
        """The member the contract numbers `code` (a member is itself); ValueError for a number the
        contract does not define."""
        if isinstance(code, cls):
            return code
        index = int(code) - cls._first_code()
        members = list(cls)
        if not 0 <= index < len(members):
            raise ValueError(f"{cls.__name__} has no member numbered {code}")
        return members[index]


class JobStatus(ContractEnum):
    """IComputeMarket.JobStatus (its `None`, 0, is never a job's: an unknown job reverts)."""

    OPEN = "open"
    RUNNING = "running"
    REVEALING = "revealing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @classmethod
    def _first_code(cls) -> int:
        return 1

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_JOB_STATUSES


TERMINAL_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


class AssignmentStatus(ContractEnum):
    """IComputeMarket.AssignmentStatus: one provider's progress on one seat."""

    NONE = "none"
    CLAIMED = "claimed"
    COMMITTED = "committed"
    REVEALED = "revealed"


CONTRACT_ENUMS: dict[str, type[ContractEnum]] = {"JobStatus": JobStatus, "AssignmentStatus": AssignmentStatus}


def effective_status(stored: JobStatus, commit_deadline: int | None, now: int | None) -> JobStatus:
    """The status `getJob` reports at time `now`: a Running job past its commit deadline is
    Revealing (the contract moves it there lazily, without an event)."""
    if (
        stored is JobStatus.RUNNING
        and commit_deadline is not None
        and now is not None
        and commit_deadline < now
    ):
        return JobStatus.REVEALING
    return stored


class Outcome(StrEnum):
    """What a job meant for one seat holder once it ended."""

    WON = "won"  # in the majority: paid, collateral back
    SLASHED = "slashed"  # outvoted, or never committed or revealed: collateral taken
    RETURNED = "returned"  # revealed on a job without quorum: collateral back, no pay
    CANCELLED = "cancelled"  # the job was cancelled: collateral back


def seat_outcome(job: JobStatus, *, winner: bool, revealed: bool) -> Outcome:
    """The outcome of a seat on a job that ended as `job`: `winner` if the settlement named its
    holder among the majority, `revealed` if its holder revealed a result."""
    if job is JobStatus.CANCELLED:
        return Outcome.CANCELLED
    if winner:
        return Outcome.WON
    if job is JobStatus.FAILED and revealed:
        return Outcome.RETURNED
    return Outcome.SLASHED
