"""Compiled contract artifacts (contracts/build/<Name>.json), loaded once and shared."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import MarketError

REPO_ROOT = Path(__file__).resolve().parents[2]


class ArtifactSettings(BaseSettings):
    """Where the artifacts live: $CMARKET_ARTIFACTS, else the repository's contracts/build."""

    model_config = SettingsConfigDict(env_prefix="CMARKET_", extra="ignore")

    artifacts: Path = Field(REPO_ROOT / "contracts" / "build", description="compiled contract artifacts")


@cache
def build_dir() -> Path:
    return ArtifactSettings().artifacts


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str

    def entry(self, kind: str, name: str) -> dict[str, Any]:
        """The ABI entry of the function, event or error called `name`."""
        for entry in self.abi:
            if entry["type"] == kind and entry.get("name") == name:
                return entry
        raise KeyError(f"{self.name} has no {kind} {name}")


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


def market_abi() -> list[dict[str, Any]]:
    """ComputeMarket's ABI."""
    return load("ComputeMarket").abi
