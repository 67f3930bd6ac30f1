"""The host/module contract of WebAssembly workloads (WASM.md is its documentation).

A module exports `memory`, `alloc(len: i32) -> i32` and an entry `run(ptr: i32, len: i32) -> i64`.
The host asks `alloc` for room, writes the framed input there, calls the entry, and reads the
result from the (pointer << 32 | length) it returns. The only import a module may have is
`cm.fail(ptr: i32, len: i32)`, which ends the run with the module's own UTF-8 message.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from marketplace.protocol.hashing import canonical_json

from ..errors import InvalidArguments, InvalidInput

MEMORY_EXPORT = "memory"
ALLOC_EXPORT = "alloc"
HOST_MODULE = "cm"
FAIL_IMPORT = "fail"
FAIL_MESSAGE_MAX = 1024
"""Bytes of a `cm.fail` message the host keeps."""

PAGE_SIZE = 65536
MAX_TABLE_ELEMENTS = 100_000
U32 = (1 << 32) - 1
_LENGTH = struct.Struct("<I")


def args_frame(args: Mapping[str, Any]) -> bytes:
    """The first frame: the spec's `args` as canonical JSON (b"{}" when there are none)."""
    try:
        json.dumps(args, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArguments(f"WebAssembly args must be plain JSON (no NaN or infinities): {exc}") from None
    return canonical_json(dict(args))


def frame_size(args_json: bytes, inputs: Sequence[bytes]) -> int:
    return 4 + sum(4 + len(data) for data in (args_json, *inputs))


def frame(args_json: bytes, inputs: Sequence[bytes]) -> bytearray:
    """u32 count, then count times (u32 length, bytes): args first, then the inputs in spec order.
    All integers little-endian. A bytearray, so the host copies it into the module only once."""
    for index, data in enumerate(inputs):
        if len(data) > U32:
            raise InvalidInput(f"input {index} is {len(data)} bytes; a frame holds at most {U32}")
    buffer = bytearray(_LENGTH.pack(1 + len(inputs)))
    for data in (args_json, *inputs):
        buffer += _LENGTH.pack(len(data))
        buffer += data
    return buffer


def to_i32(value: int) -> int:
    """An unsigned 32-bit value as the signed i32 wasmtime's Python API expects."""
    return value - (1 << 32) if value > (1 << 31) - 1 else value


def split_result(packed: int) -> tuple[int, int]:
    """The entry's i64 result as (pointer, length): the high and low 32 bits, unsigned."""
    packed &= (1 << 64) - 1
    return packed >> 32, packed & U32
