"""A whole marketplace on one machine: a devnet, the marketplace service, a Ray head and provider
daemons, each in its own process, all on loopback, all stopped together.

`cmarket demo`, the end-to-end tests and the throughput benchmark run the real system through
this, so what they show is what a user would run by hand: the same `cmarket` commands.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from ..chain.bootstrap import DevnetMarket, setup_devnet_market
from ..chain.devnet import ChainKind, Devnet, free_port
from ..protocol.errors import MarketError

ETHER = 10**18
# Ray on loopback only (its default is the machine's public address), with token authentication.
RAY_OBJECT_STORE = 256 * 1024 * 1024
# Keep idle workers: every daemon is its own Ray job with its own workers, and a worker started on
# demand costs a second or more, which a provider waiting on a tiny task would feel every time.
RAY_SYSTEM_CONFIG = '{"idle_worker_killing_time_threshold_ms": 3600000, "num_workers_soft_limit": 16}'
RAY_ENVIRONMENT = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}


class SandboxError(MarketError):
    """A process of the sandbox did not start or stopped unexpectedly."""


@dataclass
class Process:
    """A child process in its own process group, with its output in a log file."""

    name: str
    command: list[str]
    log_path: Path
    environment: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env={**os.environ, **self.environment},
            )  # fmt: skip
        finally:
            log.close()
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def signal(self, signum: int) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code."""
        if self.popen is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.signal(signal.SIGKILL)  # whatever else of its group is left (Ray's own children)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL to the whole group: what a crash or `kill -9` does."""
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass(frozen=True)
class ProviderSpec:
    """A provider daemon to run: a name, a devnet account and its command-line options."""

    name: str
    account: int
    options: tuple[str, ...] = ()
    byzantine: str | None = None


def cmarket(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "marketplace.cli", *arguments]


class Sandbox:
    """Starts the pieces in order and stops them in reverse; use as a context manager."""

    def __init__(
        self,
        workdir: Path,
        providers: Sequence[ProviderSpec] = (),
        *,
        chain: ChainKind = ChainKind.ANVIL,
        ray_cpus: int = 2,
        provider_stake: int = 5 * ETHER,
        indexer_poll: float = 0.1,
        startup_timeout: float = 60.0,
        block_time: float | None = None,
    ) -> None:
        self.workdir = workdir
        self.specs = list(providers)
        self.chain = chain
        self.ray_cpus = ray_cpus
        self.provider_stake = provider_stake
        self.indexer_poll = indexer_poll
        self.startup_timeout = startup_timeout
        self.node = Devnet(chain, block_time=block_time)  # None: a block for each transaction
        self.world: DevnetMarket | None = None
        self.api_port = free_port()
        self.ray_port = free_port()
        self.service: Process | None = None
        self.ray: Process | None = None
        self.providers: dict[str, Process] = {}
        self.metrics_ports: dict[str, int] = {}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ray_address(self) -> str:
        return f"127.0.0.1:{self.ray_port}"

    @property
    def ray_token_file(self) -> Path:
        return self.workdir / "ray-auth-token"

    @property
    def ray_environment(self) -> dict[str, str]:
        """The environment of a process that joins this sandbox's Ray: token mode, and its token."""
        return {**RAY_ENVIRONMENT, "RAY_AUTH_TOKEN_PATH": str(self.ray_token_file)}

    @property
    def market(self) -> str:
        assert self.world is not None
        return self.world.deployment.market

    # ── start ──

    def start(self, *, on_step: Callable[[str], None] | None = None) -> Sandbox:
        say = on_step or (lambda _: None)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            say(f"starting {self.chain} and deploying the market")
            self.node.start()
            self.world = setup_devnet_market(self.node)
            say("starting the marketplace service and Ray")
            self.start_service()
            self.start_ray()
            self.wait_for_service()
            self.wait_for_ray()
            say(f"starting {len(self.specs)} provider daemons")
            for spec in self.specs:
                self.start_provider(spec)
            for spec in self.specs:
                self.wait_for_provider(spec)
        except BaseException:
            self.stop()
            raise
        return self

    def start_service(self) -> Process:
        command = cmarket(
            "market", "serve", "--rpc", self.node.rpc_url, "--market", self.market,
            "--db", f"sqlite:///{self.workdir / 'market.db'}", "--blobs", str(self.workdir / "blobs"),
            "--port", str(self.api_port), "--poll-interval", str(self.indexer_poll), "--finality-depth", "8",
        )  # fmt: skip
        self.service = Process("marketplace", command, self.workdir / "logs" / "marketplace.log").start()
        return self.service

    def stop_service(self) -> None:
        if self.service is not None:
            self.service.stop()

    def wait_for_service(self) -> None:
        assert self.service is not None
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(base_url=self.api_url, timeout=2.0) as http:
            while True:
                if not self.service.running:
                    raise SandboxError(f"the marketplace service exited:\n{self.service.tail()}")
                try:
                    if http.get("/health").json().get("status") == "ok":
                        return
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"the marketplace service did not become healthy:\n{self.service.tail()}"
                    )
                time.sleep(0.1)

    def start_ray(self) -> Process:
        ray = Path(sys.executable).with_name("ray")
        command = [
            str(ray), "start", "--head", "--block", f"--port={self.ray_port}", f"--num-cpus={self.ray_cpus}",
            "--include-dashboard=false", "--disable-usage-stats", f"--object-store-memory={RAY_OBJECT_STORE}",
            f"--system-config={RAY_SYSTEM_CONFIG}",
        ]  # fmt: skip
        # A fresh token for this sandbox's Ray, readable by its owner only; `ray start` creates none.
        self.ray_token_file.unlink(missing_ok=True)
        descriptor = os.open(self.ray_token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as token:
            token.write(secrets.token_hex(32))
        self.ray = Process("ray", command, self.workdir / "logs" / "ray.log", self.ray_environment).start()
        return self.ray

    def wait_for_ray(self) -> None:
        assert self.ray is not None
        deadline = time.monotonic() + self.startup_timeout
        while "Ray runtime started" not in self.ray.tail(200):
            if not self.ray.running:
                raise SandboxError(f"the Ray head exited:\n{self.ray.tail()}")
            if time.monotonic() > deadline:
                raise SandboxError(f"the Ray head did not start:\n{self.ray.tail()}")
            time.sleep(0.1)

    def provider_command(self, spec: ProviderSpec) -> list[str]:
        port = self.metrics_ports.setdefault(spec.name, free_port())
        command = cmarket(
            "provider", "start", "--rpc", self.node.rpc_url, "--market", self.market, "--api", self.api_url,
            "--devnet-account", str(spec.account), "--state", str(self.workdir / "providers" / spec.name),
            "--ray-address", self.ray_address, "--stake", str(self.provider_stake / ETHER),
            "--metrics-port", str(port), "--drain-timeout", "10",
        )  # fmt: skip
        if spec.byzantine:
            command += ["--byzantine", spec.byzantine]
        return [*command, *spec.options]

    def start_provider(self, spec: ProviderSpec) -> Process:
        process = Process(
            spec.name,
            self.provider_command(spec),
            self.workdir / "logs" / f"{spec.name}.log",
            self.ray_environment,
        ).start()
        self.providers[spec.name] = process
        return process

    def wait_for_provider(self, spec: ProviderSpec) -> None:
        """Until its log says it started (registered, staked, connected to Ray)."""
        process = self.providers[spec.name]
        deadline = time.monotonic() + self.startup_timeout
        while '"provider started"' not in process.tail(400):
            if not process.running:
                raise SandboxError(f"provider {spec.name} exited:\n{process.tail()}")
            if time.monotonic() > deadline:
                raise SandboxError(f"provider {spec.name} did not start:\n{process.tail()}")
            time.sleep(0.1)

    def restart_provider(self, name: str) -> Process:
        spec = next(spec for spec in self.specs if spec.name == name)
        process = self.start_provider(spec)
        self.wait_for_provider(spec)
        return process

    def address_of(self, name: str) -> str:
        spec = next(spec for spec in self.specs if spec.name == name)
        return self.node.accounts[spec.account].address

    # ── stop ──

    def stop(self) -> None:
        """Stops everything that was started, providers first (they drain), the devnet last."""
        for process in self.providers.values():
            process.signal(signal.SIGTERM)
        for process in self.providers.values():
            process.stop(timeout=15)
        if self.service is not None:
            self.service.stop()
        if self.ray is not None:
            self.ray.stop(timeout=5)
        self.node.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def logs(self) -> Iterator[tuple[str, Path]]:
        for process in (self.service, self.ray, *self.providers.values()):
            if process is not None:
                yield process.name, process.log_path
