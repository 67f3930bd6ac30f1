"""Signing keys: a hex private key, an eth-account keystore file, or a devnet's well-known account."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ..protocol.errors import MarketError


class BadKey(MarketError):
    """A private key or keystore that cannot be used."""


def from_hex(key: str) -> LocalAccount:
    text = key.strip().removeprefix("0x")
    if len(text) != 64:
        raise BadKey(f"a private key is 32 bytes of hex (64 characters), got {len(text)} characters")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise BadKey("the private key is not hexadecimal") from None
    try:
        account: LocalAccount = Account.from_key(raw)
        return account
    except (ValueError, Exception) as exc:
        raise BadKey(f"not a valid secp256k1 private key: {exc}") from None


def from_keystore(path: Path, password: str) -> LocalAccount:
    try:
        keyfile = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadKey(f"keystore {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BadKey(f"keystore {path} is not a JSON keystore: {exc}") from None
    try:
        account: LocalAccount = Account.from_key(Account.decrypt(keyfile, password))
        return account
    except ValueError as exc:
        raise BadKey(f"cannot decrypt keystore {path}: {exc}") from None
