"""Canonical hashing: spec bytes, CIDs and the commitment formula."""

from __future__ import annotations

import hashlib

import pytest
from eth_utils import keccak, to_canonical_address
from hypothesis import given
from hypothesis import strategies as st

from marketplace.hashing import canonical_json, cid_v1, commitment, spec_hash

addresses = st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex())
words = st.binary(min_size=32, max_size=32)


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert (
        canonical_json({"b": 1, "a": [1, {"d": "é", "c": None}]})
        == '{"a":[1,{"c":null,"d":"é"}],"b":1}'.encode()
    )


def test_spec_hash_ignores_key_order() -> None:
    assert spec_hash({"x": 1, "y": 2}) == spec_hash({"y": 2, "x": 1})
    assert spec_hash({"x": 1}) == hashlib.sha256(b'{"x":1}').digest()


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
