"""Compiled contract artifacts (contracts/build/<Name>.json), loaded once and shared."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import MarketError

REPO_ROOT = Path(__file__).resolve().parents[1]


def build_dir() -> Path:
    """Where artifacts live: $CMARKET_ARTIFACTS, else the repository's contracts/build."""
    return Path(os.environ.get("CMARKET_ARTIFACTS", REPO_ROOT / "contracts" / "build"))


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str


@cache
def load(name: str) -> Artifact:
    """The artifact of contract `name`; raises MarketError when it was never built."""
    path = build_dir() / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise MarketError(f"no artifact for {name} at {path}: run `make contracts`") from None
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        compiler_version=data["compiler"]["version"],
    )


@cache
def all_names() -> tuple[str, ...]:
    return tuple(sorted(path.stem for path in build_dir().glob("*.json")))
