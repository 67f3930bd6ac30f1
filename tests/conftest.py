"""Fixtures: one anvil per session with the market deployed once, reverted to a snapshot after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from marketplace.chain.devnet import Devnet
from tests.helpers import Base, Chain, build_chain, deploy_base


@pytest.fixture(scope="session")
def devnet() -> Iterator[Devnet]:
    with Devnet() as node:
        yield node


@pytest.fixture(scope="session")
def base(devnet: Devnet) -> Base:
    return deploy_base(devnet)


@pytest.fixture
def chain(devnet: Devnet, base: Base) -> Iterator[Chain]:
    snapshot = devnet.snapshot()
    try:
        yield build_chain(devnet, base)
    finally:
        devnet.revert(snapshot)
