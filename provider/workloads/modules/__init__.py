"""Example WebAssembly workloads, shipped as WAT sources and compiled on request.

Each `<name>.wat` here follows the ABI in WASM.md. `example_module(name)` returns the module's
binary, the bytes to upload as the job's module blob.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from wasmtime import wat2wasm

_HERE = Path(__file__).parent


def example_names() -> list[str]:
    return sorted(path.stem for path in _HERE.glob("*.wat"))


def example_source(name: str) -> str:
    """The WAT text of the example called `name`."""
    path = _HERE / f"{name}.wat"
    if path.parent != _HERE or not path.is_file():
        raise ValueError(f"no example module called {name!r}; there are {', '.join(example_names())}")
    return path.read_text()


@cache
def example_module(name: str) -> bytes:
    """The compiled WebAssembly binary of the example called `name`."""
    return bytes(wat2wasm(example_source(name)))
