"""Compiles contracts/src into contracts/build/<Name>.json, or checks the committed artifacts are current.

Usage: python scripts/compile_contracts.py [--check]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import solcx
import solcx.wrapper

REPO = Path(__file__).resolve().parents[1]
SOURCES = REPO / "contracts" / "src"
BUILD = REPO / "contracts" / "build"
ADAPTER = REPO / "scripts" / "solc"

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": True,
    # Shanghai is the newest fork both anvil and ganache 7 execute.
    "evmVersion": "shanghai",
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


def pinned_version() -> str:
    """The solc version package.json pins (solc-js)."""
    return str(json.loads((REPO / "package.json").read_text())["dependencies"]["solc"])


def compiler() -> Path:
    """A native solc of the pinned version when one is on PATH, else the solc-js adapter."""
    native = shutil.which("solc")
    if native:
        version = subprocess.run([native, "--version"], capture_output=True, text=True).stdout
        if f"Version: {pinned_version()}+" in version:
            return Path(native)
    return ADAPTER


def standard_input() -> dict[str, Any]:
    sources = {
        str(path.relative_to(REPO)): {"content": path.read_text()} for path in sorted(SOURCES.rglob("*.sol"))
    }
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def compile_artifacts() -> dict[str, dict[str, Any]]:
    """Compiles every source and returns the artifact of each deployable contract, by name."""
    solc = compiler()
    version = solcx.wrapper.get_version_str_from_solc_binary(solc)
    output = solcx.compile_standard(standard_input(), solc_binary=solc, base_path=str(REPO))
    for diagnostic in output.get("errors", []):
        print(diagnostic["formattedMessage"], file=sys.stderr)
    artifacts: dict[str, dict[str, Any]] = {}
    for source, contracts in output["contracts"].items():
        if not source.startswith("contracts/src/"):
            continue
        for name, compiled in contracts.items():
            bytecode = compiled["evm"]["bytecode"]["object"]
            if not bytecode:
                continue  # interfaces and abstract contracts
            artifacts[name] = {
                "contractName": name,
                "sourceName": source,
                "abi": compiled["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
                "compiler": {"name": "solc", "version": version, "settings": SETTINGS},
            }
    return artifacts


def render(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if contracts/build differs from a fresh compile"
    )
    args = parser.parse_args()

    artifacts = compile_artifacts()
    expected = {BUILD / f"{name}.json": render(artifact) for name, artifact in artifacts.items()}
    existing = set(BUILD.glob("*.json"))
    if args.check:
        stale = sorted(
            str(path.relative_to(REPO))
            for path, text in expected.items()
            if not path.exists() or path.read_text() != text
        )
        stale += sorted(str(path.relative_to(REPO)) for path in existing - expected.keys())
        if stale:
            print("stale contract artifacts (run `make contracts`):", *stale, sep="\n  ", file=sys.stderr)
            return 1
        print(f"{len(expected)} contract artifacts are current")
        return 0

    BUILD.mkdir(parents=True, exist_ok=True)
    for path in existing - expected.keys():
        path.unlink()
    for path, text in expected.items():
        path.write_text(text)
    print(f"wrote {len(expected)} artifacts to {BUILD.relative_to(REPO)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
