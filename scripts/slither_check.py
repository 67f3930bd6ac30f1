"""Runs Slither over contracts/src with the solc adapter; fails on any high-severity finding.

Usage: python scripts/slither_check.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAILING_IMPACTS = {"High"}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "slither.json"
        command = [
            str(Path(sys.executable).with_name("slither")),
            "contracts/src",
            "--solc-standard-json",
            "--solc", str(REPO / "scripts" / "solc"),
            "--filter-paths", "node_modules",
            "--json", str(report_path),
        ]  # fmt: skip
        run = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if not report_path.exists():
            print(run.stdout, run.stderr, sep="\n", file=sys.stderr)
            print("slither produced no report", file=sys.stderr)
            return 2
        report = json.loads(report_path.read_text())
    if not report.get("success"):
        print(report.get("error"), file=sys.stderr)
        return 2

    findings = report.get("results", {}).get("detectors", [])
    by_impact: dict[str, int] = {}
    for finding in findings:
        by_impact[finding["impact"]] = by_impact.get(finding["impact"], 0) + 1
    failing = [finding for finding in findings if finding["impact"] in FAILING_IMPACTS]
    for finding in failing:
        print(f"[{finding['impact']}] {finding['check']}: {finding['description'].strip()}", file=sys.stderr)
    summary = ", ".join(f"{count} {impact}" for impact, count in sorted(by_impact.items())) or "none"
    print(
        f"slither: {len(findings)} findings ({summary}); failing on {sorted(FAILING_IMPACTS)}: {len(failing)}"
    )
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
