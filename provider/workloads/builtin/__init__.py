"""The built-in catalog: deterministic Python workloads, each in its own module."""

from __future__ import annotations

from typing import Any

from .base import Builtin
from .game_of_life import GameOfLife
from .iterated_sha256 import IteratedSha256
from .matrix_multiply import MatrixMultiply
from .monte_carlo import MonteCarloPi
from .sort_dedup import SortDedup
from .word_count import WordCount

BUILTINS: tuple[Builtin[Any, Any], ...] = (
    IteratedSha256(),
    MonteCarloPi(),
    WordCount(),
    MatrixMultiply(),
    SortDedup(),
    GameOfLife(),
)

__all__ = ["BUILTINS", "Builtin"]
