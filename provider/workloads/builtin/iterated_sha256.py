"""`iterated-sha256`: SHA-256 applied `rounds` times to a seed string (the demo's workload)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pydantic import Field

from ..deadline import Deadline
from ..errors import InvalidInput
from .base import Args, Builtin, Cost, Part

MAX_ROUNDS = 10**9
# Rounds between deadline checks: about a millisecond of hashing.
_CHECK_EVERY = 1 << 12


class IteratedSha256Args(Args):
    seed: str = Field(max_length=4096, description="the text hashed first, as UTF-8")
    rounds: int = Field(ge=1, le=MAX_ROUNDS, description="how many times SHA-256 is applied")


def iterated_sha256(seed: str, rounds: int, deadline: Deadline) -> bytes:
    """d = seed.encode(); then `rounds` times d = sha256(d). Same bytes as marketplace.cli.demo.scripted's."""
    digest = seed.encode()
    sha256 = hashlib.sha256
    done = 0
    while done < rounds:
        deadline.check()
        for _ in range(min(_CHECK_EVERY, rounds - done)):
            digest = sha256(digest).digest()
        done += _CHECK_EVERY
    return digest


class IteratedSha256(Builtin[IteratedSha256Args, IteratedSha256Args]):
    name = "iterated-sha256"
    description = (
        "SHA-256 applied `rounds` times to the UTF-8 bytes of `seed`; the result is the 32-byte digest."
    )
    inputs_doc = "none"
    cost_doc = "1 fuel per SHA-256 application: fuel = rounds. Memory: constant."
    args_model = IteratedSha256Args
    part_model = IteratedSha256Args

    def split(self, args: IteratedSha256Args, inputs: Sequence[bytes]) -> list[Part[IteratedSha256Args]]:
        if inputs:
            raise InvalidInput(f"{self.name} reads no inputs, but the job lists {len(inputs)}")
        return [Part(args, ())]

    def cost(self, part: IteratedSha256Args, inputs: Sequence[bytes]) -> Cost:
        return Cost(fuel=part.rounds, memory_bytes=4 * len(part.seed) + 1024)

    def run(self, part: IteratedSha256Args, inputs: Sequence[bytes], deadline: Deadline) -> bytes:
        return iterated_sha256(part.seed, part.rounds, deadline)

    def combine(self, args: IteratedSha256Args, outputs: Sequence[bytes], deadline: Deadline) -> bytes:
        (digest,) = outputs
        return digest
