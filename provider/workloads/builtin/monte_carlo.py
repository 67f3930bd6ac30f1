"""`monte-carlo-pi`: a seeded Monte-Carlo estimate of pi, exact and reproducible in any language.

Sample i (from 0) is the point (x, y) with x = out(2i) >> 32 and y = out(2i + 1) >> 32, where
out(k) is the k-th SplitMix64 output for the seed (see `splitmix`): two 32-bit integers. The
sample hits when x*x + y*y < 2**64, i.e. it falls inside the quarter disc of radius 2**32.
The estimate is 4 * hits / samples, reported as a reduced fraction and as a decimal truncated
to 9 places, all in integer arithmetic. Tasks take disjoint ranges of sample indices; since a
sample depends only on its index, how the range is split never changes the result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from math import gcd

from pydantic import Field, model_validator

from marketplace.protocol.hashing import canonical_json

from ..deadline import Deadline
from ..errors import InvalidInput
from .base import Args, Builtin, Cost, Part
from .splitmix import GAMMA, MASK64

MAX_SAMPLES = 10**9
MAX_TASKS = 64
SAMPLES_PER_TASK = 1 << 20
"""The smallest share worth a task of its own (a few seconds of work); jobs split into at most
MAX_TASKS shares of at least this many samples."""
DECIMALS = 9
_RADIUS_SQUARED = 1 << 64
_CHECK_EVERY = 1 << 14


class MonteCarloPiArgs(Args):
    seed: int = Field(ge=0, le=MASK64, description="SplitMix64 seed, 0 to 2**64 - 1")
    samples: int = Field(ge=1, le=MAX_SAMPLES, description="how many points to draw")


class SampleRange(Args):
    seed: int = Field(ge=0, le=MASK64)
    start: int = Field(ge=0, le=MAX_SAMPLES)
    stop: int = Field(ge=1, le=MAX_SAMPLES)

    @model_validator(mode="after")
    def _ordered(self) -> SampleRange:
        if self.stop <= self.start:
            raise ValueError("stop must be greater than start")
        return self


def count_hits(seed: int, start: int, stop: int, deadline: Deadline) -> int:
    """How many of samples start..stop-1 fall inside the quarter disc."""
    # SplitMix64 inlined: a function call per draw would double the run time.
    hits = 0
    state = (seed + 2 * start * GAMMA) & MASK64
    for first in range(start, stop, _CHECK_EVERY):
        deadline.check()
        for _ in range(first, min(first + _CHECK_EVERY, stop)):
            state = (state + GAMMA) & MASK64
            z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            x = (z ^ (z >> 31)) >> 32
            state = (state + GAMMA) & MASK64
            z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
            y = (z ^ (z >> 31)) >> 32
            if x * x + y * y < _RADIUS_SQUARED:
                hits += 1
    return hits


def pi_result(hits: int, samples: int) -> bytes:
    """The job's canonical JSON: counts, 4*hits/samples as a reduced fraction, and its decimal."""
    divisor = gcd(4 * hits, samples)
    scaled = 4 * hits * 10**DECIMALS // samples
    return canonical_json(
        {
            "hits": hits,
            "samples": samples,
            "pi": {"numerator": 4 * hits // divisor, "denominator": samples // divisor},
            "pi_decimal": f"{scaled // 10**DECIMALS}.{scaled % 10**DECIMALS:0{DECIMALS}d}",
        }
    )


class MonteCarloPi(Builtin[MonteCarloPiArgs, SampleRange]):
    name = "monte-carlo-pi"
    description = (
        "Estimates pi from `samples` SplitMix64 points in the unit square (integer arithmetic only); "
        "the result is canonical JSON with the hit count and the estimate as an exact fraction."
    )
    inputs_doc = "none"
    cost_doc = (
        "1 fuel per sample: fuel = samples (split into at most 64 tasks of at least 2**20 samples). "
        "Memory: constant."
    )
    args_model = MonteCarloPiArgs
    part_model = SampleRange

    def split(self, args: MonteCarloPiArgs, inputs: Sequence[bytes]) -> list[Part[SampleRange]]:
        if inputs:
            raise InvalidInput(f"{self.name} reads no inputs, but the job lists {len(inputs)}")
        share = max(SAMPLES_PER_TASK, -(-args.samples // MAX_TASKS))
        return [
            Part(SampleRange(seed=args.seed, start=start, stop=min(start + share, args.samples)), ())
            for start in range(0, args.samples, share)
        ]

    def cost(self, part: SampleRange, inputs: Sequence[bytes]) -> Cost:
        return Cost(fuel=part.stop - part.start, memory_bytes=4096)

    def run(self, part: SampleRange, inputs: Sequence[bytes], deadline: Deadline) -> bytes:
        hits = count_hits(part.seed, part.start, part.stop, deadline)
        return canonical_json({"hits": hits, "samples": part.stop - part.start})

    def combine(self, args: MonteCarloPiArgs, outputs: Sequence[bytes], deadline: Deadline) -> bytes:
        hits = samples = 0
        for index, output in enumerate(outputs):
            try:
                partial = json.loads(output)
                hits += int(partial["hits"])
                samples += int(partial["samples"])
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"task {index}'s output is not a monte-carlo-pi partial: {exc}") from None
        if samples != args.samples:
            raise InvalidInput(f"the task outputs cover {samples} samples, the job asked for {args.samples}")
        return pi_result(hits, samples)
