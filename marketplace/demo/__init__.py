"""`cmarket demo`: the live marketplace (`live`), or the protocol alone in one process (`scripted`)."""

from __future__ import annotations

from .live import run_live_demo
from .scripted import COLLATERAL, ETHER, Demo, iterated_sha256, run_scripted_demo

__all__ = ["COLLATERAL", "ETHER", "Demo", "iterated_sha256", "run_live_demo", "run_scripted_demo"]
