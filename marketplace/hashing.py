"""Canonical hashing shared by requesters, providers and the contract: specs, blobs, commitments."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

# CIDv1 prefix of a raw blob: version 1, codec raw (0x55), multihash sha2-256 (0x12) of 32 bytes.
_CID_RAW_SHA256_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])


def canonical_json(document: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes a spec's hash is taken over."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def spec_hash(spec: Any) -> bytes:
    """`specHash` of a job spec: SHA-256 of its canonical JSON."""
    return sha256(canonical_json(spec))


def cid_v1(digest: bytes) -> str:
    """The CIDv1 (raw codec, sha2-256, base32) of a blob with this SHA-256 digest."""
    if len(digest) != 32:
        raise ValueError(f"a SHA-256 digest has 32 bytes, got {len(digest)}")
    encoded = base64.b32encode(_CID_RAW_SHA256_PREFIX + digest).decode().lower().rstrip("=")
    return "b" + encoded


def commitment(job_id: int, provider: str, result_hash: bytes, salt: bytes) -> bytes:
    """`keccak256(abi.encode(jobId, provider, resultHash, salt))`, as ComputeMarket checks it."""
    if len(result_hash) != 32 or len(salt) != 32:
        raise ValueError("result hash and salt must be 32 bytes each")
    encoded = abi_encode(
        ["uint256", "address", "bytes32", "bytes32"],
        [job_id, to_checksum_address(provider), result_hash, salt],
    )
    return keccak(encoded)
