"""The devnet manager starts a node that answers, and never leaves one behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from marketplace.chain.devnet import ChainKind, Devnet, port_in_use, rpc
from marketplace.protocol.errors import ChainError


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): treat it as gone.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_start_answers_and_stop_frees_the_port() -> None:
    node = Devnet().start()
    assert node._process is not None
    pid, port = node._process.pid, node.port
    assert int(rpc(node.rpc_url, "eth_chainId"), 16) == 31337
    assert len(node.accounts) == 10
    assert (
        int(rpc(node.rpc_url, "eth_getBalance", [node.accounts[0].address, "latest"]), 16) == 10_000 * 10**18
    )
    node.close()
    assert not process_alive(pid)
    assert port is not None and not port_in_use(port)
    node.close()  # idempotent


def test_context_manager_stops_the_node_on_error() -> None:
    pid = None
    with pytest.raises(RuntimeError), Devnet() as node:
        assert node._process is not None
        pid = node._process.pid
        raise RuntimeError("boom")
    assert pid is not None and not process_alive(pid)


def test_node_dies_with_the_python_process_that_started_it() -> None:
    script = textwrap.dedent(
        """
        from marketplace.chain.devnet import Devnet
        node = Devnet().start()
        print(node._process.pid, flush=True)
        """
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    pid = int(output.stdout.strip())
    assert not process_alive(pid)


def test_a_node_that_cannot_start_reports_its_log(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Devnet(startup_timeout=5)
    monkeypatch.setattr(node, "command", lambda: ["sh", "-c", "echo anvil exploded; exit 3"])
    with pytest.raises(ChainError, match="anvil exploded"):
        node.start()
    node.close()


def test_snapshot_revert_and_time_travel() -> None:
    with Devnet() as node:
        before = node.latest_timestamp()
        snapshot = node.snapshot()
        node.increase_time(3600)
        assert node.latest_timestamp() >= before + 3600
        node.revert(snapshot)
        assert node.latest_timestamp() < before + 3600


@pytest.mark.ganache
def test_ganache_starts_with_the_same_accounts() -> None:
    with Devnet(ChainKind.GANACHE) as node:
        assert int(rpc(node.rpc_url, "eth_chainId"), 16) == 1337
        balance = int(rpc(node.rpc_url, "eth_getBalance", [node.accounts[3].address, "latest"]), 16)
        assert balance == 10_000 * 10**18


def test_sigterm_to_the_group_is_enough() -> None:
    node = Devnet().start()
    assert node._process is not None
    os.killpg(node._process.pid, signal.SIGTERM)
    node._process.wait(timeout=10)
    node.close()
