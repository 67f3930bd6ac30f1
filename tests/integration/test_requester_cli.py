"""The requester's command line end to end: a devnet, `cmarket market serve`, and a scripted provider."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from marketplace.chain.bootstrap import DevnetMarket, setup_devnet_market
from marketplace.chain.devnet import Devnet, free_port
from marketplace.chain.market import MarketActor
from marketplace.cli.demo.scripted import iterated_sha256
from marketplace.client import MarketplaceApi
from marketplace.protocol.hashing import sha256

REQUESTER = 2
PROVIDER = 4


class ScriptedProvider(threading.Thread):
    """Claims every job whose workload it knows, runs it, uploads the result and submits its hash."""

    def __init__(self, actor: MarketActor, api: MarketplaceApi) -> None:
        super().__init__(daemon=True)
        self.actor = actor
        self.api = api
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._seen: set[int] = set()

    def run(self) -> None:
        contract = self.actor.market.contract
        try:
            while not self.stop.wait(0.1):
                for log in contract.events.JobPosted().get_logs(from_block=0):
                    job_id = int(log["args"]["jobId"])
                    if job_id not in self._seen:
                        self._seen.add(job_id)
                        self.work(job_id, bytes(log["args"]["specHash"]).hex())
        except BaseException as exc:
            self.error = exc

    def work(self, job_id: int, spec_digest: str) -> None:
        spec = json.loads(self.api.download(spec_digest))
        if spec["workload"]["name"] != "iterated-sha256":
            return  # not a workload this provider runs: the job stays open
        result = iterated_sha256(spec["args"]["seed"], spec["args"]["rounds"])
        self.api.upload(result)
        self.actor.claim(job_id)
        self.actor.submit_result(job_id, sha256(result))


@dataclass
class Service:
    node: Devnet
    world: DevnetMarket
    api_url: str
    provider: ScriptedProvider

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        common = ["--api", self.api_url] if args[0] in {"status", "wait"} else [
            "--api", self.api_url, "--rpc", self.node.rpc_url, "--market", self.world.deployment.market,
        ]  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "marketplace.cli", "job", *args, *common],
            capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
        if check:
            assert result.returncode == 0, result.stderr + result.stdout
        return result


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("service")
    with Devnet() as node:
        world = setup_devnet_market(node)
        provider_actor = world.actor(node, PROVIDER)
        provider_actor.register("test://scripted")
        provider_actor.stake(10**18)
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable, "-m", "marketplace.cli", "market", "serve",
                "--rpc", node.rpc_url, "--market", world.deployment.market,
                "--db", f"sqlite:///{tmp / 'market.db'}", "--blobs", str(tmp / "blobs"),
                "--port", str(port), "--poll-interval", "0.05",
            ],
            stdout=(tmp / "serve.log").open("w"), stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        api_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{api_url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            else:
                server.kill()
                pytest.fail(f"market serve did not start:\n{(tmp / 'serve.log').read_text()}")
            provider = ScriptedProvider(provider_actor, MarketplaceApi(api_url))
            provider.start()
            yield Service(node, world, api_url, provider)
            provider.stop.set()
            provider.join(timeout=10)
            assert provider.error is None, provider.error
        finally:
            server.terminate()
            server.wait(timeout=20)


def write_spec(path: Path, name: str, seed: str, rounds: int = 1000) -> Path:
    spec = {
        "workload": {"kind": "builtin", "name": name},
        "args": {"seed": seed, "rounds": rounds},
        "limits": {"fuel": rounds, "memory_mb": 16, "timeout_s": 60},
    }
    path.write_text(json.dumps(spec))
    return path


def test_submit_wait_and_fetch_a_verified_result(service: Service, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.json", "iterated-sha256", "cli-e2e")
    (tmp_path / "input.bin").write_bytes(b"an input blob")
    submitted = service.cli(
        "submit", "--spec", str(spec), "--input", str(tmp_path / "input.bin"), "--reward", "0.01", "--json"
    )
    summary = json.loads(submitted.stdout)
    job_id = summary["job_id"]
    assert summary["inputs"] == [sha256(b"an input blob").hex()]

    waited = service.cli("wait", str(job_id), "--timeout", "60")
    assert "completed" in waited.stdout

    out = tmp_path / "result.bin"
    fetched = service.cli("result", str(job_id), "--out", str(out))
    assert out.read_bytes() == iterated_sha256("cli-e2e", 1000)
    assert "matches the on-chain result hash" in fetched.stderr

    status = json.loads(service.cli("status", str(job_id), "--json").stdout)
    assert status["status"] == "completed"
    assert status["result_hash"] == "0x" + sha256(out.read_bytes()).hex()
    assert [a["provider"] for a in status["assignments"]] == [service.provider.actor.address]
    # The spec the chain committed to is the canonical spec with the input digests added.
    spec_blob = MarketplaceApi(service.api_url).download(summary["spec"])
    assert json.loads(spec_blob)["inputs"] == summary["inputs"]


def test_an_unclaimed_job_can_be_cancelled_and_has_no_result(service: Service, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.json", "unknown-workload", "nobody-runs-this")
    job_id = json.loads(service.cli("submit", "--spec", str(spec), "--reward", "0.01", "--json").stdout)[
        "job_id"
    ]
    no_result = service.cli("result", str(job_id), check=False)
    assert no_result.returncode == 1
    assert "it has no settled result" in no_result.stderr
    service.cli("cancel", str(job_id))
    waited = service.cli("wait", str(job_id), "--timeout", "30", check=False)
    assert waited.returncode == 1  # the job ended without completing
    assert "cancelled" in waited.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "--spec", "/nonexistent.json", "--reward", "0.01"], "does not exist"),
        (["submit", "--spec", "{spec}", "--reward", "-1"], "must be positive"),
        (["submit", "--spec", "{spec}", "--reward", "lots"], "is not a number"),
        (["submit", "--spec", "{spec}", "--reward", "0.01", "--token", "gold"], "ETH or an address"),
        (["status", "999999"], "no job 999999"),
    ],
)
def test_bad_requests_fail_with_a_message(
    service: Service, tmp_path: Path, args: list[str], message: str
) -> None:
    spec = write_spec(tmp_path / "spec.json", "iterated-sha256", "bad-input")
    result = service.cli(*[arg.replace("{spec}", str(spec)) for arg in args], check=False)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
