"""The lifecycle smoke test again, on ganache instead of anvil."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from marketplace.chain.devnet import ChainKind, Devnet
from tests.helpers import Base, Chain, build_chain, deploy_base
from tests.integration import test_lifecycle as lifecycle

pytestmark = pytest.mark.ganache


@pytest.fixture(scope="module")
def ganache() -> Iterator[tuple[Devnet, Base]]:
    with Devnet(ChainKind.GANACHE) as node:
        yield node, deploy_base(node)


@pytest.fixture
def ganache_chain(ganache: tuple[Devnet, Base]) -> Iterator[Chain]:
    node, base = ganache
    snapshot = node.snapshot()
    try:
        yield build_chain(node, base)
    finally:
        node.revert(snapshot)


def test_single_replica_eth(ganache_chain: Chain) -> None:
    lifecycle.test_single_replica_is_paid_on_submit(ganache_chain, "eth")


def test_three_replicas_erc20_with_a_liar(ganache_chain: Chain) -> None:
    lifecycle.test_three_replicas_majority_paid_and_liar_slashed(ganache_chain, "token")


def test_reverts_are_decoded_on_ganache(ganache_chain: Chain) -> None:
    from marketplace.protocol.reverts import NothingToWithdraw

    with pytest.raises(NothingToWithdraw):
        ganache_chain.outsider.withdraw()
