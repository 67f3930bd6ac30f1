"""Exceptions: the provider package's root, under the marketplace's own root."""

from __future__ import annotations

from marketplace.protocol.errors import MarketError


class ProviderError(MarketError):
    """Root of every error the provider package raises."""
