"""Request parameters: address and id types with clear refusals, and opaque paging cursors."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

from eth_utils import to_checksum_address
from fastapi import Path, Query
from pydantic import AfterValidator

from .errors import BadRequest

MAX_INT64 = 2**63 - 1  # the largest id every SQL backend stores
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def checksum_address(value: str) -> str:
    """The EIP-55 form of a 0x-prefixed 20-byte hex address; mixed case must already be EIP-55."""
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"{value[:60]!r} is not an address (0x and 40 hex digits)")
    checksummed = to_checksum_address(value)
    if value != checksummed and value[2:] not in (value[2:].lower(), value[2:].upper()):
        raise ValueError(f"{value!r} is not an address: its mixed case fails the EIP-55 checksum")
    return checksummed


Address = Annotated[str, AfterValidator(checksum_address)]
AddressPath = Annotated[Address, Path(description="0x-prefixed address, any case or EIP-55")]
JobIdPath = Annotated[int, Path(ge=0, le=MAX_INT64, description="job id")]
Limit = Annotated[int, Query(ge=1, le=200, description="page size")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="`next_cursor` of the previous page; omit for the first")
]


def encode_cursor(kind: str, value: str | int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _decode(kind: str, cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    prefix, _, value = text.partition(":")
    if prefix != kind or not value:
        raise BadRequest(f"bad cursor {cursor[:60]!r}: pass the next_cursor of a previous page of {kind}")
    return value


def decode_job_cursor(cursor: str) -> int:
    """The id below which the next page of jobs starts."""
    value = _decode("jobs", cursor)
    if not re.fullmatch(r"[0-9]{1,19}", value) or int(value) > MAX_INT64:
        raise BadRequest(f"bad cursor {cursor[:60]!r}: pass the next_cursor of a previous page of jobs")
    return int(value)


def decode_provider_cursor(cursor: str) -> str:
    """The address after which the next page of providers starts."""
    value = _decode("providers", cursor)
    if not _ADDRESS.fullmatch(value):
        raise BadRequest(f"bad cursor {cursor[:60]!r}: pass the next_cursor of a previous page of providers")
    return value
