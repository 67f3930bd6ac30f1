"""Prometheus metrics of one provider daemon, in a registry of its own, served at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class ProviderMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Counter(
            "cmarket_provider_jobs_total", "Jobs that ended, by outcome", ["outcome"], registry=r
        )
        self.fuel = Counter("cmarket_provider_fuel_total", "Fuel used by the jobs run", registry=r)
        self.tasks = Counter("cmarket_provider_jobs_run_total", "Jobs computed (result ready)", registry=r)
        self.failures = Counter(
            "cmarket_provider_failures_total",
            "Jobs whose workload failed, by error code",
            ["code"],
            registry=r,
        )
        self.refusals = Counter(
            "cmarket_provider_refusals_total", "Jobs not taken, by policy rule", ["code"], registry=r
        )
        self.claims_lost = Counter(
            "cmarket_provider_claims_lost_total", "Claims another provider won", registry=r
        )
        self.credits = Gauge(
            "cmarket_provider_credits_wei", "Earnings credited and not yet withdrawn", ["token"], registry=r
        )
        self.withdrawn = Counter(
            "cmarket_provider_withdrawn_wei_total", "Earnings withdrawn", ["token"], registry=r
        )
        self.slashed = Counter("cmarket_provider_slashed_wei_total", "Collateral slashed", registry=r)
        self.transactions = Counter(
            "cmarket_provider_transactions_total", "Transactions sent, by function", ["function"], registry=r
        )
        self.gas = Counter(
            "cmarket_provider_gas_used_total", "Gas used, by function", ["function"], registry=r
        )
        self.stages = Gauge("cmarket_provider_held_jobs", "Jobs held, by stage", ["stage"], registry=r)
        self.api_up = Gauge(
            "cmarket_provider_marketplace_up", "1 while the event stream is followed", registry=r
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serves /metrics on `port` (0: a free one); returns the port."""
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
