"""Canonical hashing: spec bytes, CIDs and the commitment formula."""

from __future__ import annotations

import hashlib

import pytest
from eth_utils import keccak, to_canonical_address
from hypothesis import given
from hypothesis import strategies as st

from marketplace.protocol.hashing import Hash32, canonical_json, cid_v1, commitment, sha256
from marketplace.protocol.spec import parse_spec, spec_hash

addresses = st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex())
words = st.binary(min_size=32, max_size=32)


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert (
        canonical_json({"b": 1, "a": [1, {"d": "é", "c": None}]})
        == '{"a":[1,{"c":null,"d":"é"}],"b":1}'.encode()
    )


SPEC = {"workload": {"kind": "builtin", "name": "iterated-sha256"}, "args": {"seed": "s", "rounds": 3},
        "limits": {"fuel": 3, "memory_mb": 16, "timeout_s": 60}}  # fmt: skip


def test_spec_hash_ignores_key_order() -> None:
    assert spec_hash(SPEC) == spec_hash(dict(reversed(list(SPEC.items()))))


def test_spec_hash_is_one_definition_with_defaults_filled_in() -> None:
    """A spec that leaves `inputs` out hashes as the spec that writes the default, and as the
    canonical bytes a requester uploads."""
    written = {**SPEC, "inputs": []}
    assert spec_hash(SPEC) == spec_hash(written) == sha256(parse_spec(SPEC).canonical_bytes())
    assert (
        spec_hash(SPEC)
        == hashlib.sha256(canonical_json(parse_spec(written).model_dump(mode="json"))).digest()
    )


def test_hash32_has_one_text_form_and_a_blob_address() -> None:
    value = sha256(b"x")
    assert isinstance(value, bytes) and len(value) == 32
    assert value.hex0x == "0x" + hashlib.sha256(b"x").hexdigest()
    assert value.digest == hashlib.sha256(b"x").hexdigest()
    assert Hash32.from_hex(value.hex0x) == Hash32.from_hex(value.digest) == value
    with pytest.raises(ValueError, match="32 bytes"):
        Hash32(b"short")
    with pytest.raises(ValueError, match="not a 32-byte hash"):
        Hash32.from_hex("0x1234")


def test_cid_of_empty_blob_matches_ipfs() -> None:
    # `ipfs add --cid-version 1 --raw-leaves` of an empty file.
    assert (
        cid_v1(hashlib.sha256(b"").digest()) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    )


def test_cid_rejects_wrong_digest_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        cid_v1(b"short")


@given(st.integers(min_value=0, max_value=2**256 - 1), addresses, words, words)
def test_commitment_is_keccak_of_four_abi_words(
    job_id: int, provider: str, result: bytes, salt: bytes
) -> None:
    words_ = job_id.to_bytes(32, "big") + bytes(12) + to_canonical_address(provider) + result + salt
    assert commitment(job_id, provider, result, salt) == keccak(words_)


def test_commitment_rejects_short_inputs() -> None:
    with pytest.raises(ValueError):
        commitment(1, "0x" + "11" * 20, b"\x01" * 31, b"\x02" * 32)
