"""`cmarket workload ...`: the built-in catalog, and running a job spec locally as a provider would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import JsonOption, console, fail

app = typer.Typer(help="Workloads: the built-in catalog, and running a job spec locally.")


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """The built-in workloads: arguments, inputs and cost model."""
    from provider.workloads import catalog

    entries = catalog()
    if as_json:
        print(json.dumps([
            {"name": e.name, "description": e.description, "args_schema": e.args_schema,
             "inputs": e.inputs, "cost_model": e.cost_model}
            for e in entries
        ]))  # fmt: skip
        return
    for entry in entries:
        console.print(f"[bold]{entry.name}[/]  {entry.description}")
        console.print(f"    inputs: {entry.inputs}")
        console.print(f"    cost:   {entry.cost_model}")


@app.command("run")
def run(
    spec: Annotated[Path, typer.Option(help="job spec, a JSON file")],
    inputs: Annotated[list[Path] | None, typer.Option("--input", help="input file (repeatable)")] = None,
    module: Annotated[Path | None, typer.Option(help="the WebAssembly module the spec names")] = None,
    out: Annotated[Path | None, typer.Option(help="write the result here")] = None,
) -> None:
    """Run a job spec locally, as a provider would, and print its result hash and fuel used.

    Inputs given with --input are added to the spec's `inputs` (as `cmarket job submit` does);
    the module of a wasm spec is given with --module (its digest must match the spec's)."""
    from provider.workloads import WorkloadError, run_job

    from ..protocol.hashing import sha256
    from ..protocol.spec import InvalidSpec, WasmWorkload, parse_spec

    try:
        document = json.loads(spec.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"cannot read spec {spec}: {exc}")
    blobs: dict[str, bytes] = {}
    for path in inputs or []:
        try:
            data = path.read_bytes()
        except OSError as exc:
            fail(f"cannot read input {path}: {exc}")
        blobs[sha256(data).digest] = data
    if isinstance(document, dict):
        document = {**document, "inputs": [*document.get("inputs", []), *blobs]}
    try:
        job = parse_spec(document)
    except InvalidSpec as exc:
        fail(str(exc))
    if isinstance(job.workload, WasmWorkload):
        if module is None:
            fail("the spec runs a WebAssembly module: pass it with --module")
        code = module.read_bytes()
        if sha256(code).digest != job.workload.module:
            fail(f"{module} hashes to {sha256(code).digest}, not the spec's module {job.workload.module}")
        blobs[job.workload.module] = code
    try:
        result = run_job(job, blobs)
    except WorkloadError as exc:
        fail(f"{exc.code}: {exc.message}")
    if out is not None:
        out.write_bytes(result.output)
    console.print(f"result sha256 {sha256(result.output).hex0x}  ({len(result.output)} bytes)")
    console.print(f"fuel used {result.fuel_used:,}; spec digest {job.digest}")
