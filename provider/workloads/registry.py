"""Looking built-ins up by name, and the catalog a provider advertises."""

from __future__ import annotations

from typing import Any

from .base import WorkloadInfo
from .builtin import BUILTINS, Builtin
from .errors import UnknownWorkload

_BY_NAME: dict[str, Builtin[Any, Any]] = {workload.name: workload for workload in BUILTINS}


def builtin(name: str) -> Builtin[Any, Any]:
    """The built-in called `name`; UnknownWorkload lists the ones there are."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownWorkload(
            f"no built-in workload is called {name!r}; the catalog has {', '.join(sorted(_BY_NAME))}"
        ) from None


def catalog() -> list[WorkloadInfo]:
    """Every built-in: name, description, JSON schema of its arguments, inputs, cost model."""
    return [workload.info() for workload in BUILTINS]
