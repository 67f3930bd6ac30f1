"""Built-ins that compute from their arguments: iterated-sha256, monte-carlo-pi, matrix-multiply,
game-of-life. Known answers, reference implementations, fan-out and argument checks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from math import pi
from typing import Any

import pytest

from marketplace.cli.demo.scripted import iterated_sha256
from marketplace.protocol.hashing import sha256
from marketplace.protocol.spec import JobSpec, parse_spec
from provider.workloads import InvalidArguments, InvalidInput, plan, run_job
from provider.workloads.builtin import matrix_multiply, monte_carlo
from provider.workloads.builtin.splitmix import output as splitmix


def job(name: str, args: dict[str, Any], inputs: Sequence[bytes] = ()) -> tuple[JobSpec, dict[str, bytes]]:
    spec = parse_spec(
        {
            "workload": {"kind": "builtin", "name": name},
            "args": args,
            "inputs": [sha256(data).hex() for data in inputs],
            "limits": {"fuel": 10**9, "memory_mb": 64, "timeout_s": 30},
        }
    )
    return spec, {sha256(data).hex(): data for data in inputs}


def result(name: str, args: dict[str, Any], inputs: Sequence[bytes] = ()) -> bytes:
    return run_job(*job(name, args, inputs)).output


def refused(name: str, args: dict[str, Any], inputs: Sequence[bytes] = ()) -> None:
    plan(*job(name, args, inputs))


# iterated-sha256


def test_iterated_sha256_known_answers() -> None:
    # FIPS 180-2's "abc" vector, and SHA-256d of the empty string (Bitcoin's double hash).
    assert result("iterated-sha256", {"seed": "abc", "rounds": 1}).hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert result("iterated-sha256", {"seed": "", "rounds": 2}).hex() == (
        "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456"
    )


@pytest.mark.parametrize(
    ("seed", "rounds"), [("demo-0", 1_000), ("naïve ✓", 3), ("x" * 4096, 7), ("s", 4097)]
)
def test_iterated_sha256_matches_the_demo_byte_for_byte(seed: str, rounds: int) -> None:
    assert result("iterated-sha256", {"seed": seed, "rounds": rounds}) == iterated_sha256(seed, rounds)


@pytest.mark.parametrize(
    "args",
    [
        {"seed": "s", "rounds": 0},
        {"seed": "s", "rounds": "10"},
        {"seed": "s", "rounds": 10.0},
        {"seed": "s", "rounds": True},
        {"seed": 5, "rounds": 10},
        {"seed": "s"},
        {"seed": "s", "rounds": 10, "salt": "x"},
        {"seed": "s" * 4097, "rounds": 10},
        {"seed": "s", "rounds": 10**9 + 1},
    ],
)
def test_iterated_sha256_refuses_bad_args(args: dict[str, Any]) -> None:
    with pytest.raises(InvalidArguments, match="invalid arguments for iterated-sha256"):
        refused("iterated-sha256", args)


def test_iterated_sha256_reads_no_inputs() -> None:
    with pytest.raises(InvalidInput, match="reads no inputs"):
        refused("iterated-sha256", {"seed": "s", "rounds": 1}, [b"data"])


# monte-carlo-pi


def test_splitmix64_reference_outputs() -> None:
    assert [splitmix(0, k) for k in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_monte_carlo_first_sample_by_hand() -> None:
    # Seed 0: x = 0xE220A839, y = 0x6E789E6A; x² + y² ≈ 1.78e19 < 2**64 ≈ 1.84e19: a hit, so pi ≈ 4/1.
    assert json.loads(result("monte-carlo-pi", {"seed": 0, "samples": 1})) == {
        "hits": 1,
        "samples": 1,
        "pi": {"numerator": 4, "denominator": 1},
        "pi_decimal": "4.000000000",
    }


def reference_hits(seed: int, samples: int) -> int:
    """The docstring's definition, straight from splitmix.output (not the optimised loop)."""
    hits = 0
    for i in range(samples):
        x, y = splitmix(seed, 2 * i) >> 32, splitmix(seed, 2 * i + 1) >> 32
        hits += x * x + y * y < 2**64
    return hits


def test_monte_carlo_matches_its_definition_and_estimates_pi() -> None:
    document = json.loads(result("monte-carlo-pi", {"seed": 2024, "samples": 20_000}))
    assert document["hits"] == reference_hits(2024, 20_000)
    estimate = Fraction(document["pi"]["numerator"], document["pi"]["denominator"])
    assert estimate == Fraction(4 * document["hits"], 20_000)
    assert abs(float(estimate) - pi) < 0.05
    # The decimal is the fraction truncated to 9 places.
    decimal = Fraction(document["pi_decimal"])
    assert len(document["pi_decimal"]) == 11 and decimal <= estimate < decimal + Fraction(1, 10**9)


def test_monte_carlo_fan_out_gives_the_single_task_result(monkeypatch: pytest.MonkeyPatch) -> None:
    args = {"seed": 99, "samples": 2_500}
    whole = job("monte-carlo-pi", args)
    assert len(plan(*whole).tasks) == 1
    single = run_job(*whole)
    monkeypatch.setattr(monte_carlo, "SAMPLES_PER_TASK", 1_000)
    split = plan(*whole)
    assert [(task.args["start"], task.args["stop"]) for task in split.tasks] == [
        (0, 1000),
        (1000, 2000),
        (2000, 2500),
    ]
    fanned = run_job(*whole)
    assert fanned == single


@pytest.mark.parametrize(
    "args",
    [
        {"seed": -1, "samples": 5},
        {"seed": 2**64, "samples": 5},
        {"seed": 1, "samples": 0},
        {"seed": 1, "samples": 1.5},
    ],
)
def test_monte_carlo_refuses_bad_args(args: dict[str, Any]) -> None:
    with pytest.raises(InvalidArguments):
        refused("monte-carlo-pi", args)


# matrix-multiply


def test_matrix_product_by_hand() -> None:
    a, b = [[1, 2, 3], [4, 5, 6]], [[7, 8], [9, 10], [11, 12]]
    assert result("matrix-multiply", {"a": a, "b": b}) == b"58 64\n139 154\n"


def test_matrix_product_from_input_blobs_with_negative_entries() -> None:
    assert result("matrix-multiply", {}, [b"1 -2\n3 4", b"5 6\n7 8\n"]) == b"-9 -10\n43 50\n"


def test_matrix_product_is_exact_beyond_64_bits() -> None:
    big = 2**63 - 1
    assert (
        result("matrix-multiply", {"a": [[big, big]], "b": [[big], [big]]}) == f"{2 * big * big}\n".encode()
    )


def naive_product(a: list[list[int]], b: list[list[int]]) -> list[list[int]]:
    return [[sum(a[i][k] * b[k][j] for k in range(len(b))) for j in range(len(b[0]))] for i in range(len(a))]


def test_matrix_fan_out_by_rows_equals_one_task(monkeypatch: pytest.MonkeyPatch) -> None:
    a = [[(3 * i + 7 * j) % 11 - 5 for j in range(4)] for i in range(7)]
    b = [[(i * j + 1) % 9 - 4 for j in range(3)] for i in range(4)]
    expected = "".join(" ".join(map(str, row)) + "\n" for row in naive_product(a, b)).encode()
    spec = job("matrix-multiply", {"a": a, "b": b})
    assert len(plan(*spec).tasks) == 1
    assert run_job(*spec).output == expected
    monkeypatch.setattr(matrix_multiply, "MIN_WORK_PER_TASK", 1)
    assert len(plan(*spec).tasks) == 7
    assert run_job(*spec).output == expected


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"a": [[1]]}, "both `a` and `b`"),
        ({"a": [[1, 2], [3]], "b": [[1], [2]]}, "same length"),
        ({"a": [], "b": [[1]]}, "at least 1 item"),
        ({"a": [[2**63]], "b": [[1]]}, "less than or equal"),
        ({"a": [["1"]], "b": [[1]]}, "valid integer"),
    ],
)
def test_matrix_refuses_bad_args(args: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArguments, match=match):
        refused("matrix-multiply", args)


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ([b"1 2\n3 4\n"], "reads two inputs"),
        ([b"1  2\n", b"1\n2\n"], "line 1: expected integers separated by single spaces"),
        ([b"1 2\n", b"+1\n2\n"], "input 1 \\(B\\), line 1"),
        ([b"1.5\n", b"1\n"], "line 1"),
        ([b"", b"1\n"], "input 0 \\(A\\) is empty"),
        ([b"1 2\n3\n", b"1\n2\n"], "line 2: 1 entries"),
        ([b"9223372036854775808\n", b"1\n"], "signed 64-bit"),
        ([b"1 2\n", b"1 2\n"], "A's columns must match B's rows"),
    ],
)
def test_matrix_refuses_malformed_inputs_in_plan(inputs: list[bytes], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        refused("matrix-multiply", {}, inputs)


def test_matrix_in_args_reads_no_inputs() -> None:
    with pytest.raises(InvalidInput, match="reads no inputs"):
        refused("matrix-multiply", {"a": [[1]], "b": [[1]]}, [b"1\n"])


# game-of-life


def life(args: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result("game-of-life", args))
    return document


def naive_life(grid: list[str], generations: int) -> tuple[list[str], list[int]]:
    """Cell by cell, with modular indexing: the torus, neighbours counted with multiplicity."""
    height, width = len(grid), len(grid[0])
    cells = [[c == "#" for c in row] for row in grid]
    population = [sum(map(sum, cells))]
    for _ in range(generations):
        following = []
        for y in range(height):
            row = []
            for x in range(width):
                n = sum(
                    cells[(y + dy) % height][(x + dx) % width]
                    for dy in (-1, 0, 1)
                    for dx in (-1, 0, 1)
                    if (dy, dx) != (0, 0)
                )
                row.append(n == 3 or (n == 2 and cells[y][x]))
            following.append(row)
        cells = following
        population.append(sum(map(sum, cells)))
    return ["".join("#" if c else "." for c in row) for row in cells], population


def test_life_blinker_oscillates() -> None:
    vertical = [".....", "..#..", "..#..", "..#..", "....."]
    horizontal = [".....", ".....", ".###.", ".....", "....."]
    args = {"width": 5, "height": 5, "initial": vertical}
    assert life({**args, "generations": 1})["grid"] == horizontal
    assert life({**args, "generations": 2}) == {
        "width": 5,
        "height": 5,
        "generations": 2,
        "alive": 3,
        "population": [3, 3, 3],
        "grid": vertical,
    }


def test_life_glider_wraps_around_the_torus() -> None:
    glider = [".#....", "..#...", "###...", "......", "......", "......"]
    moved = ["......", "..#...", "...#..", ".###..", "......", "......"]  # one cell down and right
    args = {"width": 6, "height": 6, "initial": glider}
    assert life({**args, "generations": 4})["grid"] == moved
    # 6 cells in either direction is the way round: the start again after 24 generations.
    assert life({**args, "generations": 24})["grid"] == glider


@pytest.mark.parametrize(("width", "height", "generations"), [(13, 7, 20), (1, 5, 3), (6, 1, 3), (64, 3, 10)])
def test_life_seeded_matches_a_naive_reference(width: int, height: int, generations: int) -> None:
    start = life({"width": width, "height": height, "generations": 0, "seed": 42})
    document = life({"width": width, "height": height, "generations": generations, "seed": 42})
    grid, population = naive_life(start["grid"], generations)
    assert document["grid"] == grid
    assert document["population"] == population


def test_life_seeded_start_follows_its_definition() -> None:
    start = life({"width": 9, "height": 4, "generations": 0, "seed": 7, "density_permille": 300})
    expected = [
        "".join("#" if (splitmix(7, y * 9 + x) * 1000) >> 64 < 300 else "." for x in range(9))
        for y in range(4)
    ]
    assert start["grid"] == expected
    full = life({"width": 4, "height": 4, "generations": 1, "seed": 7, "density_permille": 1000})
    assert full["population"] == [16, 0]  # every cell has 8 live neighbours: all die
    assert life({"width": 4, "height": 4, "generations": 1, "seed": 7, "density_permille": 0})["alive"] == 0


@pytest.mark.parametrize(
    "args",
    [
        {"width": 3, "height": 3, "generations": 1},
        {"width": 3, "height": 3, "generations": 1, "seed": 1, "initial": ["...", "...", "..."]},
        {"width": 3, "height": 3, "generations": 1, "initial": ["...", "..."]},
        {"width": 3, "height": 3, "generations": 1, "initial": ["...", "..x", "..."]},
        {"width": 0, "height": 3, "generations": 1, "seed": 1},
        {"width": 3, "height": 3, "generations": -1, "seed": 1},
        {"width": 3, "height": 3, "generations": 1, "seed": 1, "density_permille": 1001},
    ],
)
def test_life_refuses_bad_args(args: dict[str, Any]) -> None:
    with pytest.raises(InvalidArguments, match="game-of-life"):
        refused("game-of-life", args)
