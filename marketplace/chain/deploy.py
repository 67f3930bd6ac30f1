"""Deploys ComputeMarket (and test contracts) and records where they live."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3

from ..protocol import artifacts
from ..protocol.errors import TransactionError
from ..protocol.views import ZERO_ADDRESS
from .sender import Call, TxSender

WEEK = 7 * 24 * 3600
ETHEREUM_SLOT = 12  # seconds: the default doubling period of a draw, about one block time
DEVNET_DOUBLING_PERIOD = 2  # local chains mine at once (or every 2 s in the block-time benchmark)


@dataclass(frozen=True)
class Deployment:
    """Where a ComputeMarket lives; written to deployments/<chain_id>.json."""

    chain_id: int
    market: str
    block: int
    tx_hash: str
    deployer: str
    owner: str
    treasury: str
    stake_token: str
    unbonding_period: int
    fee_bps: int
    gas_used: int
    doubling_period: int = ETHEREUM_SLOT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.chain_id}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: Path) -> Deployment:
        return cls(**json.loads(path.read_text()))


def deploy_contract(sender: TxSender, name: str, *constructor_args: Any) -> tuple[str, dict[str, Any]]:
    """Deploys artifact `name`; returns its address and the receipt."""
    artifact = artifacts.load(name)
    factory = sender.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    data = factory.constructor(*constructor_args).data_in_transaction
    receipt = sender.transact(Call(None, HexBytes(data), label=f"deploy {name}"))
    address = receipt.get("contractAddress")
    if not address:
        raise TransactionError(f"deploying {name} created no contract")
    return to_checksum_address(address), dict(receipt)


def deploy_market(
    sender: TxSender,
    *,
    owner: str | None = None,
    treasury: str | None = None,
    stake_token: str = ZERO_ADDRESS,
    unbonding_period: int = WEEK,
    doubling_period: int = ETHEREUM_SLOT,
    fee_bps: int = 100,
) -> Deployment:
    """Deploys ComputeMarket; the deployer is owner and treasury unless told otherwise.
    `doubling_period` should be about the chain's block time (see `DOUBLING_PERIOD`)."""
    owner = to_checksum_address(owner or sender.address)
    treasury = to_checksum_address(treasury or sender.address)
    stake_token = to_checksum_address(stake_token)
    address, receipt = deploy_contract(
        sender, "ComputeMarket", owner, treasury, stake_token, unbonding_period, doubling_period, fee_bps
    )
    return Deployment(
        chain_id=sender.chain_id,
        market=address,
        block=int(receipt["blockNumber"]),
        tx_hash=HexBytes(receipt["transactionHash"]).to_0x_hex(),
        deployer=sender.address,
        owner=owner,
        treasury=treasury,
        stake_token=stake_token,
        unbonding_period=unbonding_period,
        fee_bps=fee_bps,
        gas_used=int(receipt["gasUsed"]),
        doubling_period=doubling_period,
    )


def connect(rpc_url: str, timeout: float = 10.0) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
