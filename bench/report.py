"""Writes one "## ..." section of bench/BENCHMARKS.md, leaving the other sections as they are."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS_PATH = Path(__file__).resolve().parent / "BENCHMARKS.md"
BENCHMARKS_HEADER = (
    "# Benchmarks\n\n"
    "Measured figures for ComputeMarket. Each section names the command that produced it; "
    "re-run that command to refresh the section (other sections are left as they are).\n"
)


def replace_section(document: str, heading: str, section: str) -> str:
    """`document` with the `heading` section (up to the next "## " heading) replaced by `section`,
    or with `section` appended when there is none."""
    lines = document.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        return document.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def write_section(heading: str, section: str, path: Path = BENCHMARKS_PATH) -> None:
    document = path.read_text() if path.exists() else BENCHMARKS_HEADER
    path.write_text(replace_section(document, heading, section))
