"""`game-of-life`: Conway's Game of Life (B3/S23) on a torus, from a seeded or given start.

World: `width` x `height` cells whose edges wrap around (on a world 1 cell wide or tall, a cell
is its own neighbour, counted as often as it borders itself). Start: either `initial`, rows of
"." (dead) and "#" (alive), or a seeded grid where cell (x, y) is alive when
(out(y * width + x) * 1000) >> 64 < density_permille, out(k) being the k-th SplitMix64 output
for `seed` (see `splitmix`). Each generation a dead cell with exactly 3 live neighbours is born
and a live cell with 2 or 3 survives. The result is canonical JSON: the live-cell count of
every generation from 0 to `generations`, and the final grid in the same rows format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field, model_validator

from marketplace.protocol.hashing import canonical_json

from ..deadline import Deadline
from ..errors import InvalidInput
from .base import Args, Builtin, Cost, Part
from .splitmix import MASK64, output

MAX_SIDE = 2048
MAX_GENERATIONS = 100_000

GridRow = Annotated[str, Field(max_length=MAX_SIDE, pattern=r"^[.#]*$")]


class GameOfLifeArgs(Args):
    width: int = Field(ge=1, le=MAX_SIDE, description="cells per row")
    height: int = Field(ge=1, le=MAX_SIDE, description="rows")
    generations: int = Field(ge=0, le=MAX_GENERATIONS, description="generations to simulate")
    seed: int | None = Field(None, ge=0, le=MASK64, description="SplitMix64 seed of a random start")
    density_permille: int = Field(
        500, ge=0, le=1000, description="share of live cells in a seeded start, per mille"
    )
    initial: list[GridRow] | None = Field(
        None, max_length=MAX_SIDE, description='the start as rows of "." and "#" (instead of a seed)'
    )

    @model_validator(mode="after")
    def _one_start(self) -> GameOfLifeArgs:
        if (self.seed is None) == (self.initial is None):
            raise ValueError("give exactly one of `seed` and `initial`")
        if self.initial is not None and (
            len(self.initial) != self.height or any(len(row) != self.width for row in self.initial)
        ):
            raise ValueError(f"`initial` must be {self.height} rows of {self.width} cells")
        return self


def seeded_grid(seed: int, width: int, height: int, density_permille: int, deadline: Deadline) -> list[int]:
    """Rows as integers, bit x set when cell x is alive."""
    rows = []
    for y in range(height):
        deadline.check()
        bits = 0
        for x in range(width):
            if (output(seed, y * width + x) * 1000) >> 64 < density_permille:
                bits |= 1 << x
        rows.append(bits)
    return rows


def parse_grid(rows: Sequence[str]) -> list[int]:
    return [sum(1 << x for x, cell in enumerate(row) if cell == "#") for row in rows]


def format_grid(rows: Sequence[int], width: int) -> list[str]:
    return ["".join("#" if bits >> x & 1 else "." for x in range(width)) for bits in rows]


def step(rows: Sequence[int], width: int) -> list[int]:
    """One generation, all cells of a row at once: neighbour counts are kept as three bit planes
    (ones, twos, fours) of a 3-bit counter per cell; a count of 8 wraps to 0, which is dead anyway."""
    mask = (1 << width) - 1
    top = width - 1
    west = [((bits << 1) | (bits >> top)) & mask for bits in rows]  # bit x holds cell x - 1
    east = [(bits >> 1) | ((bits & 1) << top) for bits in rows]  # bit x holds cell x + 1
    height = len(rows)
    following = []
    for y in range(height):
        up, down = (y - 1) % height, (y + 1) % height
        ones = twos = fours = 0
        for plane in (west[up], rows[up], east[up], west[y], east[y], west[down], rows[down], east[down]):
            carry = ones & plane
            ones ^= plane
            fours ^= twos & carry
            twos ^= carry
        following.append(twos & ~fours & (ones | rows[y]))
    return following


class GameOfLife(Builtin[GameOfLifeArgs, GameOfLifeArgs]):
    name = "game-of-life"
    description = (
        "Conway's Game of Life on a wrapping grid from a SplitMix64-seeded or given start; "
        "canonical JSON with the population of every generation and the final grid."
    )
    inputs_doc = "none"
    cost_doc = (
        "1 fuel per cell per generation, the start included: fuel = width*height*(generations+1). "
        "Memory: about 2 bytes per cell plus 16 per generation."
    )
    args_model = GameOfLifeArgs
    part_model = GameOfLifeArgs

    def split(self, args: GameOfLifeArgs, inputs: Sequence[bytes]) -> list[Part[GameOfLifeArgs]]:
        if inputs:
            raise InvalidInput(f"{self.name} reads no inputs, but the job lists {len(inputs)}")
        return [Part(args, ())]

    def cost(self, part: GameOfLifeArgs, inputs: Sequence[bytes]) -> Cost:
        cells = part.width * part.height
        return Cost(
            fuel=cells * (part.generations + 1),
            memory_bytes=2 * cells + 16 * (part.generations + 1) + 64 * part.height + 1024,
        )

    def run(self, part: GameOfLifeArgs, inputs: Sequence[bytes], deadline: Deadline) -> bytes:
        if part.initial is not None:
            rows = parse_grid(part.initial)
        else:
            assert part.seed is not None  # the model requires a seed or a start
            rows = seeded_grid(part.seed, part.width, part.height, part.density_permille, deadline)
        population = [sum(bits.bit_count() for bits in rows)]
        for _ in range(part.generations):
            deadline.check()
            rows = step(rows, part.width)
            population.append(sum(bits.bit_count() for bits in rows))
        return canonical_json(
            {
                "width": part.width,
                "height": part.height,
                "generations": part.generations,
                "alive": population[-1],
                "population": population,
                "grid": format_grid(rows, part.width),
            }
        )

    def combine(self, args: GameOfLifeArgs, outputs: Sequence[bytes], deadline: Deadline) -> bytes:
        (result,) = outputs
        return result
