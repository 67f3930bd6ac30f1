"""Settings of the command line, from CMARKET_* environment variables; flags override them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    """Validated once, when a command first needs them."""

    model_config = SettingsConfigDict(env_prefix="CMARKET_", extra="ignore")

    rpc_url: str = Field("http://127.0.0.1:8545", description="Ethereum JSON-RPC endpoint")
    api_url: str = Field("http://127.0.0.1:8000", description="marketplace service URL")
    deployments_dir: Path = Field(Path("deployments"), description="where deploy writes <chain_id>.json")
    keystore_password: str | None = Field(None, description="password of --keystore files")
    rpc_timeout: float = Field(10.0, gt=0, description="seconds before an RPC request gives up")
    receipt_timeout: float = Field(120.0, gt=0, description="seconds to wait for a transaction to be mined")
