"""Job specs: the JSON document a job's `specHash` commits to, validated into typed models.

A spec names its workload (a built-in by name, or a WebAssembly module by digest), the workload's
arguments, the digests of its input blobs and the limits it must run within. Requesters hash its
canonical bytes (`canonical_json`); providers parse the bytes they fetched back with `parse_spec`
after checking they hash to the job's `specHash`. Unknown fields are refused rather than ignored:
a field one provider ignores and another honours would split honest replicas.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from .errors import MarketError
from .hashing import Hash32, canonical_json, sha256

Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest as 64 lowercase hex characters, without 0x (how blobs are addressed)."""

MAX_INPUTS = 64
MAX_MEMORY_MB = 4096
MAX_TIMEOUT_S = 86_400


class InvalidSpec(MarketError, ValueError):
    """A spec that is not valid JSON, or not a valid job spec."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BuiltinWorkload(_Model):
    kind: Literal["builtin"]
    name: str = Field(min_length=1, max_length=64, description="a workload of the built-in catalog")


class WasmWorkload(_Model):
    kind: Literal["wasm"]
    module: Digest = Field(description="digest of the WebAssembly module blob")
    entry: str = Field("run", min_length=1, max_length=64, description="the exported function to call")


class Limits(_Model):
    fuel: int = Field(gt=0, le=2**63 - 1, description="most billable compute units the job may use")
    memory_mb: int = Field(gt=0, le=MAX_MEMORY_MB, description="most memory the job may use, MiB")
    timeout_s: int = Field(gt=0, le=MAX_TIMEOUT_S, description="wall-clock guard, seconds")


class JobSpec(_Model):
    workload: Annotated[BuiltinWorkload | WasmWorkload, Field(discriminator="kind")]
    args: dict[str, Any] = Field(default_factory=dict, description="the workload's arguments")
    inputs: list[Digest] = Field(default_factory=list, max_length=MAX_INPUTS, description="input blobs")
    limits: Limits

    def canonical_bytes(self) -> bytes:
        """This spec's canonical JSON, defaults included: the bytes to upload and hash when posting.
        (A provider checks the bytes it downloaded against `specHash`; it never re-serializes.)"""
        return canonical_json(self.model_dump(mode="json"))

    @property
    def hash(self) -> Hash32:
        """SHA-256 of `canonical_bytes()`: the job's `specHash`."""
        return sha256(self.canonical_bytes())

    @property
    def digest(self) -> str:
        """`hash` as the spec blob's address (bare hex)."""
        return self.hash.digest

    def blobs(self) -> list[str]:
        """Every blob the job needs: the module of a WebAssembly workload, then the inputs."""
        module = [self.workload.module] if isinstance(self.workload, WasmWorkload) else []
        return [*module, *self.inputs]


def parse_spec(data: bytes | str | dict[str, Any]) -> JobSpec:
    """A JobSpec from JSON bytes, text or an already parsed document; InvalidSpec says what is wrong."""
    try:
        document = json.loads(data) if isinstance(data, bytes | str) else data
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidSpec(f"the spec is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidSpec(f"a spec is a JSON object, not {type(document).__name__}")
    try:
        return JobSpec.model_validate(document)
    except ValidationError as exc:
        raise InvalidSpec(f"invalid job spec: {problems(exc, 'spec')}") from None


def problems(error: ValidationError, root: str) -> str:
    """Every problem pydantic found, as `field.path: message` (`root` for the document itself)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or root}: {item['msg']}" for item in error.errors()
    )


def spec_hash(document: bytes | str | dict[str, Any]) -> Hash32:
    """The `specHash` of a job spec: SHA-256 of its canonical bytes, defaults filled in. The one
    definition: a spec that leaves a default out hashes as the spec that writes it."""
    return parse_spec(document).hash
