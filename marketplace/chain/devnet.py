"""Local devnets: starts anvil (default) or ganache on a free loopback port and always stops it.

The node runs in its own process group, killed on `stop()`, on interpreter exit, or when the
Devnet object is garbage collected, so no node outlives the program that started it.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ..protocol.artifacts import REPO_ROOT
from ..protocol.errors import ChainError
from .rpc import RpcClient

DEVNET_MNEMONIC = "test test test test test test test test test test test junk"
DEVNET_ACCOUNT_COUNT = 10
DEVNET_BALANCE_ETH = 10_000


class ChainKind(StrEnum):
    ANVIL = "anvil"
    GANACHE = "ganache"


CHAIN_IDS = {ChainKind.ANVIL: 31337, ChainKind.GANACHE: 1337}
DEVNET_CHAIN_IDS = frozenset(CHAIN_IDS.values())


@cache
def devnet_accounts() -> tuple[LocalAccount, ...]:
    """The well-known funded accounts of the devnet mnemonic (the same on anvil and ganache)."""
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        Account.from_mnemonic(DEVNET_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        for index in range(DEVNET_ACCOUNT_COUNT)
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc(url: str, method: str, params: list[Any] | None = None, timeout: float = 5.0) -> Any:
    """One JSON-RPC call on a connection of its own (for devnet methods web3 has no wrapper for)."""
    client = RpcClient(url, timeout=timeout)
    try:
        return client.call(method, *(params or []))
    finally:
        client.close()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except (ProcessLookupError, PermissionError):
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


class Devnet:
    """A throwaway local chain. Use as a context manager, or call start() and stop()."""

    def __init__(
        self,
        kind: ChainKind | str = ChainKind.ANVIL,
        *,
        port: int | None = None,
        block_time: float | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.kind = ChainKind(kind)
        self.port = port
        self.block_time = block_time
        self.startup_timeout = startup_timeout
        self.chain_id = CHAIN_IDS[self.kind]
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix=f"cmarket-{self.kind}-", suffix=".log", delete=False)  # noqa: SIM115
        self._rpc: RpcClient | None = None
        self._finalizer: weakref.finalize[[subprocess.Popen[bytes]], Devnet] | None = None

    @property
    def rpc_url(self) -> str:
        if self.port is None:
            raise ChainError("devnet not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def accounts(self) -> tuple[LocalAccount, ...]:
        return devnet_accounts()

    @property
    def log_path(self) -> Path:
        return Path(self._log.name)

    def command(self) -> list[str]:
        bin_dir = REPO_ROOT / "node_modules" / ".bin"
        assert self.port is not None
        if self.kind is ChainKind.ANVIL:
            cmd = [
                str(bin_dir / "anvil"),
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--chain-id", str(self.chain_id),
                "--mnemonic", DEVNET_MNEMONIC,
                "--accounts", str(DEVNET_ACCOUNT_COUNT),
                "--balance", str(DEVNET_BALANCE_ETH),
                "--hardfork", "shanghai",
            ]  # fmt: skip
            if self.block_time:
                cmd += ["--block-time", str(self.block_time)]
            return cmd
        cmd = [
            "node", str(REPO_ROOT / "node_modules" / "ganache" / "dist" / "node" / "cli.js"),
            "--server.host", "127.0.0.1",
            "--server.port", str(self.port),
            "--chain.chainId", str(self.chain_id),
            "--chain.hardfork", "shanghai",
            "--wallet.mnemonic", DEVNET_MNEMONIC,
            "--wallet.totalAccounts", str(DEVNET_ACCOUNT_COUNT),
            "--wallet.defaultBalance", str(DEVNET_BALANCE_ETH),
            "--logging.quiet",
        ]  # fmt: skip
        if self.block_time:
            cmd += ["--miner.blockTime", str(self.block_time)]
        return cmd

    def start(self) -> Devnet:
        if self._process is not None:
            return self
        for attempt in range(3):
            self.port = self.port if (attempt == 0 and self.port) else free_port()
            self._process = subprocess.Popen(
                self.command(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
            self._finalizer = weakref.finalize(self, _kill_group, self._process)
            atexit.register(self._finalizer)
            if self._wait_until_ready():
                return self
            self.stop()  # the port was taken between choosing and binding it: try another
        raise ChainError(f"{self.kind} did not start; its log ({self.log_path}):\n{self._log_tail()}")

    def _wait_until_ready(self) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                if int(rpc(self.rpc_url, "eth_chainId", timeout=1.0), 16) == self.chain_id:
                    return True
            except (ValueError, ChainError):
                time.sleep(0.05)
        return False

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self._rpc is not None:
            self._rpc.close()
            self._rpc = None
        if self._finalizer is not None:
            self._finalizer()  # kills the process group once; later calls are no-ops
            atexit.unregister(self._finalizer)
        self._process = None
        self._finalizer = None

    def close(self) -> None:
        """Stops the node and removes its log."""
        self.stop()
        self._log.close()
        self.log_path.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Devnet:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ── devnet-only controls ──

    def call(self, method: str, *params: Any) -> Any:
        """A raw JSON-RPC call, on a connection kept open for the node's lifetime."""
        if self._rpc is None:
            self._rpc = RpcClient(self.rpc_url, timeout=30.0)
        return self._rpc.call(method, *params)

    def snapshot(self) -> str:
        return str(self.call("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        if not self.call("evm_revert", snapshot_id):
            raise ChainError(f"evm_revert to snapshot {snapshot_id} failed")

    def increase_time(self, seconds: int) -> None:
        """Moves the clock forward and mines a block at the new time."""
        self.call("evm_increaseTime", seconds)
        self.mine()

    def mine(self) -> None:
        self.call("evm_mine")

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """The next mined block gets exactly `timestamp` (anvil only)."""
        self.call("evm_setNextBlockTimestamp", timestamp)

    def latest_timestamp(self) -> int:
        return int(self.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16)


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
