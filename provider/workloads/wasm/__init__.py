"""WebAssembly workloads: modules run in wasmtime under fuel, memory and wall-clock limits."""

from __future__ import annotations

from .planning import plan_module
from .run import run_module

__all__ = ["plan_module", "run_module"]
