"""`sort-dedup`: the records of all inputs sorted bytewise (and deduplicated), one task per input.

Records: an input is split at every "\\n"; a final "\\n" ends the last record rather than starting
an empty one, so b"a\\nb\\n" and b"a\\nb" both hold two records, b"" none and b"\\n" one empty
record. "\\r" is an ordinary byte. Order is unsigned bytewise (memcmp; a prefix sorts first),
descending with `reverse`. Each task sorts one input; the reduce k-way merges the sorted
outputs and drops repeats, so the result equals sorting all records at once. The result holds
each record followed by "\\n".
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby, islice

from pydantic import Field

from ..deadline import Deadline
from ..errors import InvalidInput
from .base import Args, Builtin, Cost, Part

# Records written between deadline checks in the merge.
_BATCH = 1 << 16


class SortDedupArgs(Args):
    unique: bool = Field(True, description="keep one copy of each distinct record")
    reverse: bool = Field(False, description="sort in descending order")


def split_records(data: bytes) -> list[bytes]:
    records = data.split(b"\n")
    if records[-1] == b"":
        records.pop()
    return records


def record_count(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def ceil_log2(n: int) -> int:
    """0 for n <= 1, else the least k with 2**k >= n."""
    return (n - 1).bit_length() if n > 1 else 0


def _distinct(records: Iterable[bytes]) -> Iterator[bytes]:
    return (record for record, _ in groupby(records))


def _join(records: Iterable[bytes], deadline: Deadline) -> bytes:
    pieces: list[bytes] = []
    iterator = iter(records)
    while batch := list(islice(iterator, _BATCH)):
        deadline.check()
        pieces.append(b"\n".join(batch))
        pieces.append(b"\n")
    return b"".join(pieces)


class SortDedup(Builtin[SortDedupArgs, SortDedupArgs]):
    name = "sort-dedup"
    description = (
        "Sorts the newline-separated records of all inputs bytewise and drops duplicates; "
        "the result is the records, each followed by a newline."
    )
    inputs_doc = "one or more blobs of records separated by newlines (one task each); any bytes but newline"
    cost_doc = (
        "Per input of b bytes and r records: b + r*ceil(log2 r) fuel; the merge of R records from k inputs: "
        "R*ceil(log2 k). Memory: about 2 bytes per input byte plus 64 per record."
    )
    args_model = SortDedupArgs
    part_model = SortDedupArgs

    def split(self, args: SortDedupArgs, inputs: Sequence[bytes]) -> list[Part[SortDedupArgs]]:
        if not inputs:
            raise InvalidInput(f"{self.name} needs at least one input")
        return [Part(args, (data,)) for data in inputs]

    def cost(self, part: SortDedupArgs, inputs: Sequence[bytes]) -> Cost:
        size = sum(len(data) for data in inputs)
        records = sum(record_count(data) for data in inputs)
        return Cost(fuel=size + records * ceil_log2(records), memory_bytes=2 * size + 64 * records + 1024)

    def reduce_cost(self, args: SortDedupArgs, parts: Sequence[Part[SortDedupArgs]]) -> Cost:
        size = sum(len(data) for part in parts for data in part.inputs)
        records = sum(record_count(data) for part in parts for data in part.inputs)
        return Cost(fuel=records * ceil_log2(len(parts)), memory_bytes=2 * size + 64 * records + 1024)

    def run(self, part: SortDedupArgs, inputs: Sequence[bytes], deadline: Deadline) -> bytes:
        records = [record for data in inputs for record in split_records(data)]
        deadline.check()
        records.sort(reverse=part.reverse)
        deadline.check()
        return _join(_distinct(records) if part.unique else records, deadline)

    def combine(self, args: SortDedupArgs, outputs: Sequence[bytes], deadline: Deadline) -> bytes:
        if len(outputs) == 1:
            return outputs[0]
        merged = heapq.merge(*(split_records(output) for output in outputs), reverse=args.reverse)
        return _join(_distinct(merged) if args.unique else merged, deadline)
