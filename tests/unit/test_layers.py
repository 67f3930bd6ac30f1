"""The floors of the code base (README "Layout", DESIGN.md): imports point down only, and no module
imports itself back through others.

1. marketplace.protocol depends on nothing of ComputeMarket;
2. chain, store, indexer, api, dashboard, the requester client (the api, store, indexer and
   dashboard never import what signs or sends a transaction);
3. provider;
4. marketplace.cli, the only part that may import provider.

Every import is counted, module-level or inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("marketplace", "provider")

FLOORS = [
    (1, "marketplace.protocol"),
    (2, "marketplace.chain"),
    (2, "marketplace.store"),
    (2, "marketplace.indexer"),
    (2, "marketplace.api"),
    (2, "marketplace.dashboard"),
    (2, "marketplace.client"),
    (2, "marketplace.metrics"),
    (3, "provider"),
    (4, "marketplace.cli"),
]
READ_ONLY = ("marketplace.store", "marketplace.indexer", "marketplace.api", "marketplace.dashboard")
SIGNING = ("marketplace.chain.sender", "marketplace.chain.market", "marketplace.chain.deploy")


def floor_of(module: str) -> int | None:
    for floor, prefix in FLOORS:
        if module == prefix or module.startswith(prefix + "."):
            return floor
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def sources() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield module_name(path), path


def imports(module: str, path: Path, *, top_level_only: bool = False) -> set[str]:
    """The ComputeMarket modules `module` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    known = {name for name, _ in sources()}
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & known
            found |= submodules  # `from package import module` depends on the module
            if len(submodules) < len(node.names):
                found.add(target)
    return {name for name in found if name in known and name != module}


def test_the_floors_cover_every_module() -> None:
    unplaced = [name for name, _ in sources() if floor_of(name) is None and name not in PACKAGES]
    assert unplaced == [], "place these modules on a floor (tests/unit/test_layers.py FLOORS)"


@pytest.mark.parametrize(("module", "path"), list(sources()), ids=[name for name, _ in sources()])
def test_imports_point_down_only(module: str, path: Path) -> None:
    own = floor_of(module)
    if own is None:
        return
    upward = sorted(name for name in imports(module, path) if (floor_of(name) or 0) > own)
    assert upward == [], f"{module} (floor {own}) imports a higher floor"
    if module.startswith(READ_ONLY):
        signing = sorted(name for name in imports(module, path) if name.startswith(SIGNING))
        assert signing == [], f"{module} is read-only and must not import what signs transactions"


def test_no_import_cycle() -> None:
    graph = {name: imports(name, path, top_level_only=True) for name, path in sources()}
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                cycle = [*stack[stack.index(child) :], child]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if child not in state:
                visit(child)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_a_module_that_imports_a_higher_floor_is_caught(tmp_path: Path) -> None:
    """The check itself: protocol code importing the chain package is flagged."""
    bad = ROOT / "marketplace" / "protocol" / "status.py"
    source = tmp_path / "status.py"
    source.write_text(bad.read_text() + "\nfrom ..chain import rpc\n")
    found = imports("marketplace.protocol.status", source)
    assert any((floor_of(name) or 0) > 1 for name in found)
