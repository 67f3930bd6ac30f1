"""Canonical hashing shared by requesters, providers and the contract: blobs, commitments, CIDs,
and the 32-byte hash value type everything else passes around."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

# CIDv1 prefix of a raw blob: version 1, codec raw (0x55), multihash sha2-256 (0x12) of 32 bytes.
_CID_RAW_SHA256_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])


class Hash32(bytes):
    """32 bytes: a SHA-256 digest, a keccak commitment, a salt, a result hash.

    Inside the program a hash is always this type (it is `bytes`, so web3 and eth_abi take it as a
    bytes32); text happens at the edges only: `hex` is the one text form (0x-prefixed, as the chain
    and the API write it) and `digest` the blob address (bare hex, as the blob store names blobs).
    """

    __slots__ = ()

    def __new__(cls, value: bytes | bytearray | memoryview) -> Hash32:
        raw = bytes(value)
        if len(raw) != 32:
            raise ValueError(f"a 32-byte hash has 32 bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def from_hex(cls, text: str) -> Hash32:
        """From 64 hex characters, with or without 0x."""
        try:
            return cls(bytes.fromhex(text.removeprefix("0x")))
        except ValueError:
            raise ValueError(f"{text!r} is not a 32-byte hash in hex") from None

    @classmethod
    def of(cls, data: bytes) -> Hash32:
        """SHA-256 of `data`."""
        return cls(hashlib.sha256(data).digest())

    @property
    def hex0x(self) -> str:
        """`0x` and 64 lower-case hex characters."""
        return "0x" + self.hex()

    @property
    def digest(self) -> str:
        """64 lower-case hex characters without 0x: how blobs are addressed."""
        return self.hex()

    @property
    def cid(self) -> str:
        """The CIDv1 of the raw blob whose SHA-256 this is."""
        return cid_v1(self)

    def __repr__(self) -> str:
        return f"Hash32({self.hex0x})"


ZERO_HASH = Hash32(bytes(32))


def canonical_json(document: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes a spec's hash is taken over."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> Hash32:
    return Hash32.of(data)


def cid_v1(digest: bytes) -> str:
    """The CIDv1 (raw codec, sha2-256, base32) of a blob with this SHA-256 digest."""
    if len(digest) != 32:
        raise ValueError(f"a SHA-256 digest has 32 bytes, got {len(digest)}")
    encoded = base64.b32encode(_CID_RAW_SHA256_PREFIX + digest).decode().lower().rstrip("=")
    return "b" + encoded


def commitment(job_id: int, provider: str, result_hash: bytes, salt: bytes) -> Hash32:
    """`keccak256(abi.encode(jobId, provider, resultHash, salt))`, as ComputeMarket checks it."""
    if len(result_hash) != 32 or len(salt) != 32:
        raise ValueError("result hash and salt must be 32 bytes each")
    encoded = abi_encode(
        ["uint256", "address", "bytes32", "bytes32"],
        [job_id, to_checksum_address(provider), bytes(result_hash), bytes(salt)],
    )
    return Hash32(keccak(encoded))
