"""The interface every built-in workload implements, and the argument-model base they share.

A built-in splits its job into parts (one per input, or slices of a range), prices each part
exactly from its arguments and input sizes (so `plan` can refuse a job before running it and
`run_task` reports the same number), runs one part, and combines the parts' outputs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from marketplace.protocol.hashing import canonical_json
from marketplace.protocol.spec import problems

from ..base import WorkloadInfo
from ..deadline import Deadline
from ..errors import InvalidArguments


class Args(BaseModel):
    """Arguments are strict JSON: no coercion ("3" is not 3, true is not 1), no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


ArgsT = TypeVar("ArgsT", bound=Args)
PartT = TypeVar("PartT", bound=Args)


@dataclass(frozen=True)
class Cost:
    """Exact fuel, and estimated peak memory in bytes, of one step."""

    fuel: int
    memory_bytes: int


@dataclass(frozen=True)
class Part(Generic[PartT]):
    """One task's share of a job: the arguments it runs with and the bytes it reads."""

    args: PartT
    inputs: tuple[bytes, ...]


def validate_model(model: type[ArgsT], raw: Mapping[str, Any], what: str) -> ArgsT:
    """`raw` validated as JSON against `model`; InvalidArguments lists every problem."""
    try:
        document = canonical_json(dict(raw))
    except (TypeError, ValueError) as exc:
        raise InvalidArguments(f"{what}: arguments must be JSON values ({exc})") from None
    try:
        return model.model_validate_json(document)
    except ValidationError as exc:
        raise InvalidArguments(f"invalid arguments for {what}: {problems(exc, 'args')}") from None


class Builtin(ABC, Generic[ArgsT, PartT]):
    """A deterministic Python workload of the catalog. Subclasses are stateless."""

    name: str
    description: str
    inputs_doc: str
    cost_doc: str
    args_model: type[ArgsT]
    part_model: type[PartT]

    def info(self) -> WorkloadInfo:
        return WorkloadInfo(
            name=self.name,
            description=self.description,
            args_schema=self.args_model.model_json_schema(),
            inputs=self.inputs_doc,
            cost_model=self.cost_doc,
        )

    def parse_args(self, raw: Mapping[str, Any]) -> ArgsT:
        return validate_model(self.args_model, raw, self.name)

    def parse_part(self, raw: Mapping[str, Any]) -> PartT:
        return validate_model(self.part_model, raw, f"a task of {self.name}")

    @abstractmethod
    def split(self, args: ArgsT, inputs: Sequence[bytes]) -> list[Part[PartT]]:
        """The job's parts, in order; raises InvalidInput for inputs that are missing or malformed."""

    @abstractmethod
    def cost(self, part: PartT, inputs: Sequence[bytes]) -> Cost:
        """What running this part costs, from its arguments and input sizes alone."""

    @abstractmethod
    def run(self, part: PartT, inputs: Sequence[bytes], deadline: Deadline) -> bytes:
        """The part's output bytes; checks `deadline` inside its loops."""

    def reduce_cost(self, args: ArgsT, parts: Sequence[Part[PartT]]) -> Cost:
        """What combining the parts' outputs costs (nothing, unless a workload says otherwise)."""
        return Cost(fuel=0, memory_bytes=0)

    @abstractmethod
    def combine(self, args: ArgsT, outputs: Sequence[bytes], deadline: Deadline) -> bytes:
        """The job's result from the parts' outputs, in part order."""
