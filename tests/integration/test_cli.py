"""`cmarket deploy`, `cmarket devnet` and `cmarket demo` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from marketplace.chain.deploy import connect
from marketplace.chain.devnet import Devnet, free_port, port_in_use
from marketplace.cli import app

runner = CliRunner()


def test_deploy_prints_one_json_object_and_records_it(devnet: Devnet, tmp_path: Path) -> None:
    result = runner.invoke(app, ["deploy", "--rpc", devnet.rpc_url, "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    deployment = json.loads(result.stdout)
    assert deployment["chain_id"] == 31337
    assert deployment["block"] > 0
    assert json.loads((tmp_path / "31337.json").read_text()) == deployment
    code = connect(devnet.rpc_url).eth.get_code(deployment["market"])
    assert len(code) > 1000


def test_deploy_with_an_explicit_key_and_fee(devnet: Devnet, tmp_path: Path) -> None:
    key = "0x" + devnet.accounts[5].key.hex()
    args = [
        "deploy",
        "--rpc",
        devnet.rpc_url,
        "--key",
        key,
        "--fee-bps",
        "250",
        "--json",
        "--out",
        str(tmp_path),
    ]
    deployment = json.loads(runner.invoke(app, args).stdout)
    assert deployment["deployer"] == devnet.accounts[5].address
    assert deployment["fee_bps"] == 250


def test_deploy_reports_a_dead_rpc_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["deploy", "--rpc", url, "--json", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert f"cannot reach an Ethereum JSON-RPC endpoint at {url}" in result.output
    assert not (tmp_path / "31337.json").exists()


def test_deploy_refuses_the_wrong_chain(devnet: Devnet, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["deploy", "--rpc", devnet.rpc_url, "--chain-id", "1", "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "is chain 31337, not the expected chain 1" in result.output


@pytest.mark.parametrize(
    ("key", "message"),
    [("0x1234", "64 characters"), ("zz" * 32, "not hexadecimal"), ("00" * 32, "not a valid secp256k1")],
)
def test_deploy_rejects_a_bad_key(devnet: Devnet, tmp_path: Path, key: str, message: str) -> None:
    result = runner.invoke(app, ["deploy", "--rpc", devnet.rpc_url, "--key", key, "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert message in result.output


def test_deploy_with_an_unfunded_key_says_so(devnet: Devnet, tmp_path: Path) -> None:
    key = "0x" + Account.create().key.hex()
    result = runner.invoke(app, ["deploy", "--rpc", devnet.rpc_url, "--key", key, "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "has no ETH" in result.output


def test_deploy_from_a_keystore(devnet: Devnet, tmp_path: Path) -> None:
    account = devnet.accounts[6]
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "hunter2", iterations=2)))
    env = {"CMARKET_KEYSTORE_PASSWORD": "hunter2"}
    args = ["deploy", "--rpc", devnet.rpc_url, "--keystore", str(keystore), "--json", "--out", str(tmp_path)]
    result = runner.invoke(app, args, env=env)
    assert json.loads(result.stdout)["deployer"] == account.address
    wrong = runner.invoke(app, args, env={"CMARKET_KEYSTORE_PASSWORD": "wrong"})
    assert wrong.exit_code == 1
    assert "cannot decrypt keystore" in wrong.output


def test_devnet_command_runs_until_interrupted_and_leaves_nothing(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "marketplace.cli", "devnet", "--port", str(port), "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
        # As when started in the background by a non-interactive shell (CI): SIGINT ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Press Ctrl-C" in line or not line:
            break
    output = "".join(lines)
    assert "Press Ctrl-C" in output, output
    deployment = json.loads((tmp_path / "31337.json").read_text())
    assert deployment["market"] in output
    assert connect(f"http://127.0.0.1:{port}").eth.get_code(deployment["market"])
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    assert not port_in_use(port)


def test_devnet_command_refuses_a_busy_port(devnet: Devnet) -> None:
    assert devnet.port is not None
    result = runner.invoke(app, ["devnet", "--port", str(devnet.port)])
    assert result.exit_code == 1
    assert "already in use" in result.output


def test_scripted_demo_summary_shows_outcomes_payments_and_slashes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "marketplace.cli", "demo", "--scripted"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "16 jobs: 14 completed, 1 failed, 1 cancelled" in out
    assert "10/10 verified" in out
    assert "mallory slashed 0.1 ETH on job 3" in out
    assert "mallory slashed 0.1 ETH on job 4" in out
    assert "bob slashed 0.1 ETH on job 5" in out
    assert "✗" not in out  # every settled result matches a local run
    for function in ("postJob", "claimJob", "commitResult", "revealResult", "finalizeJob", "submitResults"):
        assert function in out
