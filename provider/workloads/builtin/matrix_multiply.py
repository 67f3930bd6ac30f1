"""`matrix-multiply`: the exact integer product C = A x B, split by blocks of A's rows.

Matrix text format (inputs and the result): ASCII, one row per line, each line ending in "\\n"
(optional after the last row of an input), entries as decimal integers (`-?[0-9]+`, at most 19
digits, within the signed 64-bit range) separated by single spaces. The result uses the same
format, so products chain; its entries are exact, however large they grow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from operator import mul
from typing import Annotated

from pydantic import Field

from ..deadline import Deadline
from ..errors import InvalidArguments, InvalidInput
from .base import Args, Builtin, Cost, Part

MAX_DIM = 4096
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_TASKS = 16
MIN_WORK_PER_TASK = 1 << 18
"""Multiply-adds below which splitting off another task costs more than it saves."""
_LINE = re.compile(rb"-?[0-9]{1,19}(?: -?[0-9]{1,19})*")

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Row = Annotated[list[Int64], Field(min_length=1, max_length=MAX_DIM)]
MatrixArg = Annotated[list[Row], Field(min_length=1, max_length=MAX_DIM)]
Matrix = list[list[int]]


class MatrixMultiplyArgs(Args):
    a: MatrixArg | None = Field(None, description="A as a list of rows (omit to read A from the first input)")
    b: MatrixArg | None = Field(
        None, description="B as a list of rows (omit to read B from the second input)"
    )


class RowBlock(Args):
    """A task's share: its inputs are A's rows for the block and the whole of B, as matrix text."""


def parse_matrix(data: bytes, what: str) -> Matrix:
    """A matrix from matrix text; InvalidInput says which line is wrong."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        raise InvalidInput(f"{what} is empty")
    rows: Matrix = []
    for number, line in enumerate(lines, 1):
        if not _LINE.fullmatch(line):
            raise InvalidInput(
                f"{what}, line {number}: expected integers separated by single spaces, got {line[:60]!r}"
            )
        row = [int(field) for field in line.split(b" ")]
        if max(row) > INT64_MAX or min(row) < INT64_MIN:
            raise InvalidInput(f"{what}, line {number}: an entry is outside the signed 64-bit range")
        if rows and len(row) != len(rows[0]):
            raise InvalidInput(f"{what}, line {number}: {len(row)} entries, the first row has {len(rows[0])}")
        rows.append(row)
    if len(rows) > MAX_DIM or len(rows[0]) > MAX_DIM:
        raise InvalidInput(f"{what} is {len(rows)}x{len(rows[0])}; at most {MAX_DIM}x{MAX_DIM} is allowed")
    return rows


def format_matrix(rows: Matrix) -> bytes:
    return b"".join(" ".join(map(str, row)).encode() + b"\n" for row in rows)


def multiply(a: Matrix, b: Matrix, deadline: Deadline) -> Matrix:
    columns = list(zip(*b, strict=True))
    product: Matrix = []
    for row in a:
        deadline.check()
        product.append([sum(map(mul, row, column)) for column in columns])
    return product


def _shape(data: bytes) -> tuple[int, int]:
    """Rows and columns of well-formed matrix text, counted without parsing it."""
    first = data.split(b"\n", 1)[0]
    rows = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    return rows, first.count(b" ") + 1


class MatrixMultiply(Builtin[MatrixMultiplyArgs, RowBlock]):
    name = "matrix-multiply"
    description = (
        "The exact product of two integer matrices (64-bit entries, exact result); "
        "the result is matrix text (one row per line, entries separated by spaces)."
    )
    inputs_doc = (
        "none when `a` and `b` are given in args; otherwise exactly two matrix-text blobs, A then B "
        "(rows on lines, entries separated by single spaces)"
    )
    cost_doc = (
        "1 fuel per multiply-add: fuel = n*m*p for an n x m times m x p product, split into at most "
        "16 tasks by blocks of rows. Memory: about 64 bytes per entry of A and B, 96 per entry of C."
    )
    args_model = MatrixMultiplyArgs
    part_model = RowBlock

    def split(self, args: MatrixMultiplyArgs, inputs: Sequence[bytes]) -> list[Part[RowBlock]]:
        a, b = self._operands(args, inputs)
        if len(a[0]) != len(b):
            raise InvalidInput(
                f"{self.name}: A is {len(a)}x{len(a[0])} and B is {len(b)}x{len(b[0])}: "
                "A's columns must match B's rows"
            )
        work_per_row = len(b) * len(b[0])
        rows_per_task = max(-(-len(a) // MAX_TASKS), -(-MIN_WORK_PER_TASK // work_per_row))
        b_text = format_matrix(b)
        return [
            Part(RowBlock(), (format_matrix(a[first : first + rows_per_task]), b_text))
            for first in range(0, len(a), rows_per_task)
        ]

    def _operands(self, args: MatrixMultiplyArgs, inputs: Sequence[bytes]) -> tuple[Matrix, Matrix]:
        if args.a is not None and args.b is not None:
            if inputs:
                raise InvalidInput(f"{self.name} with `a` and `b` in its args reads no inputs")
            for name, matrix in (("a", args.a), ("b", args.b)):
                if any(len(row) != len(matrix[0]) for row in matrix):
                    raise InvalidArguments(f"{self.name}: the rows of `{name}` must all have the same length")
            return args.a, args.b
        if args.a is not None or args.b is not None:
            raise InvalidArguments(f"{self.name}: give both `a` and `b` in args, or neither (and two inputs)")
        if len(inputs) != 2:
            raise InvalidInput(
                f"{self.name} without matrices in its args reads two inputs, A and B; got {len(inputs)}"
            )
        return parse_matrix(inputs[0], "input 0 (A)"), parse_matrix(inputs[1], "input 1 (B)")

    def cost(self, part: RowBlock, inputs: Sequence[bytes]) -> Cost:
        if len(inputs) != 2:
            raise InvalidInput(f"a {self.name} task reads two inputs, got {len(inputs)}")
        (n, m), (_, p) = _shape(inputs[0]), _shape(inputs[1])
        return Cost(fuel=n * m * p, memory_bytes=64 * (n * m + m * p) + 96 * n * p)

    def run(self, part: RowBlock, inputs: Sequence[bytes], deadline: Deadline) -> bytes:
        a = parse_matrix(inputs[0], "A's rows")
        b = parse_matrix(inputs[1], "B")
        if len(a[0]) != len(b):
            raise InvalidInput(f"A's rows have {len(a[0])} columns but B has {len(b)} rows")
        return format_matrix(multiply(a, b, deadline))

    def combine(self, args: MatrixMultiplyArgs, outputs: Sequence[bytes], deadline: Deadline) -> bytes:
        return b"".join(outputs)
