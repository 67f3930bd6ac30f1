"""Prometheus metrics of the marketplace service (indexer and API share one registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_INDEXED = Counter("cmarket_indexer_events_total", "Events indexed", registry=REGISTRY)
BLOCKS_INDEXED = Counter("cmarket_indexer_blocks_total", "Blocks indexed", registry=REGISTRY)
REORGS = Counter("cmarket_indexer_reorgs_total", "Chain reorganizations undone", registry=REGISTRY)
RPC_RETRIES = Counter("cmarket_indexer_rpc_retries_total", "RPC failures retried", registry=REGISTRY)
INDEXED_BLOCK = Gauge("cmarket_indexer_block", "Last block fully indexed", registry=REGISTRY)
HEAD_BLOCK = Gauge("cmarket_indexer_head_block", "Chain head seen by the indexer", registry=REGISTRY)
LAG_BLOCKS = Gauge("cmarket_indexer_lag_blocks", "Blocks between the head and the index", registry=REGISTRY)
EVENTS_PER_SECOND = Gauge("cmarket_indexer_events_per_second", "Events/s of the last step", registry=REGISTRY)
HTTP_LATENCY = Histogram(
    "cmarket_http_request_seconds",
    "API request latency",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
