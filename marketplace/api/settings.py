"""Settings of an API process, validated at start-up: flags of `cmarket market serve`, or
CMARKET_API_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CMARKET_API_", extra="forbid", frozen=True)

    max_blob_bytes: int = Field(64 * MIB, ge=1, description="largest blob accepted")
    healthy_lag_blocks: int = Field(
        3, ge=0, description='/health says "ok" while the index is at most this far behind the head'
    )
    stream_poll_seconds: float = Field(0.2, gt=0, description="how often /v1/events looks for new events")
    stream_keepalive_seconds: float = Field(
        15.0, gt=0, description="a keep-alive comment after this long without events"
    )
    response_cache_entries: int = Field(
        4096, ge=0, description="answers cached until the index changes (single job, provider, stats)"
    )
    db_threads: int = Field(2, ge=1, description="worker threads running SQL at once (SQLite: 2 is plenty)")
