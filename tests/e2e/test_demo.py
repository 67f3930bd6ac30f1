"""`make demo` in a reduced form: one job of each kind, through the real marketplace, and its summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_the_demo_settles_every_job_and_summarizes_it() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "marketplace.cli", "demo"],
        env={**os.environ, "DEMO_JOBS": "9", "COLUMNS": "160"},
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    summary = re.search(
        r"9 jobs: (?P<outcomes>[^.]*)\. Results verified: (?P<good>\d+)/(?P<checked>\d+)\.", output
    )
    assert summary is not None, output[-4000:]
    assert summary["outcomes"] == "9 completed"
    # mallory lies: the replicated jobs catch it; a single replica it ran alone would be paid.
    assert int(summary["checked"]) == 9 and int(summary["good"]) >= 5
    mallory = re.search(r"mallory \(wrong-result\)\s*│\s*(\d+)\s*│\s*(\d+)\s*│", output)
    assert mallory is not None and int(mallory[2]) >= 5, output[-4000:]  # slashed on every 3-replica job
    for kind in ("iterated-sha256", "monte-carlo-pi", "word-count", "matrix-multiply", "sort-dedup",
                 "game-of-life", "wasm fnv1a64", "wasm byte-histogram", "wasm rle"):  # fmt: skip
        assert kind in output
    assert re.search(r"Dashboard: http://127\.0\.0\.1:\d+/", output)
    assert "stopping providers, marketplace, Ray and the devnet" in output
