"""The HTTP routes behind the dashboard, over the live-indexed devnet market: insight series agree
with the public API and with what the demo did on chain, search resolves every kind of query, the
pages are served with the API intact, and bad input is a 4xx that says what is wrong."""

from __future__ import annotations

import hashlib
import itertools
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from eth_utils import to_checksum_address
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.chain.devnet import free_port
from marketplace.chain.rpc import RpcClient
from marketplace.dashboard.mount import STATIC, install_dashboard
from marketplace.indexer.sync import Indexer
from marketplace.protocol.hashing import canonical_json, cid_v1
from marketplace.store.database import make_engine, migrate
from tests.browser.world import COLLATERAL, World, make_app, serve

UNKNOWN = to_checksum_address("0x" + "ab" * 20)


def ok(api: httpx.Client, path: str, **params: Any) -> Any:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_job(api: httpx.Client, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while (response := api.get(f"/v1/jobs/{job_id}")).status_code == 404:
        assert time.monotonic() < deadline, f"job {job_id} was not indexed"
        time.sleep(0.05)
    return dict(response.json())


def steady(api: httpx.Client, path: str, **params: Any) -> tuple[dict[str, Any], Any]:
    """/v1/stats and `path` read with no indexer commit between them (retried until so)."""
    for _ in range(50):
        before = ok(api, "/v1/stats")
        found = ok(api, path, **params)
        if ok(api, "/v1/stats") == before:
            return before, found
    raise AssertionError("the index kept changing")


# ── activity, latency, summary ──


def test_activity_ends_at_chain_time_and_its_totals_are_the_stats(api: httpx.Client) -> None:
    stats, activity = steady(api, "/v1/insights/activity", bucket=60, buckets=90)
    assert activity["bucket_seconds"] == 60
    assert activity["end"] == ok(api, "/health")["last_block_timestamp"]
    times = activity["times"]
    assert len(times) == 90 and all(b - a == 60 for a, b in itertools.pairwise(times))
    assert times[-1] + 59 == activity["end"]
    counts = stats["jobs_by_status"]
    assert activity["open_jobs"][-1] == counts["open"]
    assert activity["in_progress"][-1] == counts["running"] + counts["revealing"]
    for status in ("completed", "failed", "cancelled"):
        assert activity[f"{status}_total"][-1] == counts[status]
    # The demo ran within the last 90 minutes of chain time: every job was posted inside the window.
    assert sum(activity["posted"]) == stats["jobs_total"]
    assert sum(activity["completed"]) == counts["completed"]
    assert all(value >= 0 for key in ("open_jobs", "in_progress") for value in activity[key])


def test_activity_of_a_short_window_counts_earlier_jobs_as_its_baseline(api: httpx.Client) -> None:
    stats, activity = steady(api, "/v1/insights/activity", bucket=1, buckets=1)
    assert len(activity["times"]) == 1
    assert activity["completed_total"] == [stats["jobs_by_status"]["completed"]]


def test_latency_matches_the_completed_jobs(api: httpx.Client) -> None:
    completed: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = ok(api, "/v1/jobs", status="completed", limit=200, **({"cursor": cursor} if cursor else {}))
        completed += page["jobs"]
        if (cursor := page["next_cursor"]) is None:
            break
    durations = sorted(job["finished_at"] - job["posted_at"] for job in completed)
    latency = ok(api, "/v1/insights/latency", bins=5)
    assert latency["count"] == len(durations)
    assert (latency["min"], latency["max"]) == (durations[0], durations[-1])
    assert latency["p50"] == statistics.median(durations) == ok(api, "/v1/stats")["median_completion_seconds"]
    assert latency["p90"] == durations[math.ceil(0.9 * len(durations)) - 1]
    assert latency["p99"] == durations[math.ceil(0.99 * len(durations)) - 1]
    bins = latency["bins"]
    assert 1 <= len(bins) <= 5 + 1
    assert sum(b["count"] for b in bins) == len(durations)
    assert all(b["end"] - b["start"] == latency["bin_seconds"] for b in bins)
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(bins))
    assert bins[0]["start"] <= durations[0] and durations[-1] < bins[-1]["end"]
    for duration in durations:
        (home,) = [b for b in bins if b["start"] <= duration < b["end"]]
        assert home["count"] > 0


def test_summary_counts_the_demo_slashes(api: httpx.Client) -> None:
    summary = ok(api, "/v1/insights/summary")
    # mallory on jobs 3 (wrong result) and 4 (no reveal), bob on job 5 (never committed)
    assert summary == {
        "providers_active": 3, "slashes": 3, "slashed_amount": str(3 * COLLATERAL), "requesters": 1,
    }  # fmt: skip


# ── provider history ──


def test_provider_history_outcomes_reputation_and_earnings(api: httpx.Client, world: World) -> None:
    mallory = ok(api, f"/v1/insights/providers/{world.names['mallory']}", buckets=20)
    assert (sum(mallory["won"]), sum(mallory["slashed"]), sum(mallory["returned"])) == (0, 2, 1)
    assert mallory["reputation"][-1] == 0.0
    assert mallory["earned"] == {}
    assert [(item["job_id"], item["outcome"]) for item in mallory["recent"]] == [
        (5, "returned"), (4, "slashed"), (3, "slashed"),
    ]  # fmt: skip
    assert len(mallory["times"]) <= 20 and mallory["times"] == sorted(mallory["times"])
    assert mallory["times"][-1] == ok(api, "/health")["last_block_timestamp"]

    for name, won, slashed in (("alice", 3, 0), ("bob", 13, 1)):
        history = ok(api, f"/v1/insights/providers/{world.names[name].lower()}")
        assert (sum(history["won"]), sum(history["slashed"])) == (won, slashed)
        assert history["reputation"][-1] == pytest.approx(won / (won + slashed))
        earned = ok(api, f"/v1/providers/{world.names[name]}")["earned"]
        assert {token: series[-1] for token, series in history["earned"].items()} == earned
        for series in history["earned"].values():  # cumulative: never falls
            assert [int(v) for v in series] == sorted(int(v) for v in series)
        assert all(r is None or 0 <= r <= 1 for r in history["reputation"])


# ── search ──


def search(api: httpx.Client, q: str) -> dict[str, Any]:
    return dict(ok(api, "/v1/search", q=q))


def job_hits(found: dict[str, Any]) -> list[tuple[int, str]]:
    return [(hit["job_id"], hit["match"]) for hit in found["hits"] if hit["kind"] == "job"]


def test_search_by_job_id(api: httpx.Client) -> None:
    for query in ("3", "#3", " 3 "):
        found = search(api, query)
        assert (found["kind"], found["query"]) == ("job_id", query.strip())
        assert found["hits"] == [{
            "kind": "job", "match": "id", "job_id": 3, "status": "completed", "address": None, "digest": None,
            "jobs": None,
        }]  # fmt: skip
    assert search(api, "999999")["hits"] == []


def test_search_by_digest_finds_specs_results_revealed_results_and_blobs(
    api: httpx.Client, world: World
) -> None:
    job = ok(api, "/v1/jobs/3")
    spec = job["spec_hash"]
    for query in (spec, spec[2:], spec.upper(), cid_v1(bytes.fromhex(spec[2:]))):
        found = search(api, query)
        assert found["kind"] == "digest"
        assert job_hits(found) == [(3, "spec_hash")]
        assert {"kind": "blob", "digest": spec[2:]}.items() <= found["hits"][-1].items()
    result = search(api, job["result_hash"])
    assert job_hits(result) == [(3, "result_hash")]
    (lie,) = [a for a in job["assignments"] if a["outcome"] == "slashed"]
    # mallory told the same lie on job 5, where nobody reached a quorum
    assert job_hits(search(api, lie["result_hash"])) == [(5, "revealed_result"), (3, "revealed_result")]
    assert job_hits(search(api, job["posted_tx"])) == [(3, "posted_tx")]
    assert search(api, "0x" + "00" * 32)["hits"] == []


def test_search_by_address(api: httpx.Client, world: World) -> None:
    found = search(api, world.names["mallory"].lower())
    assert found["kind"] == "address"
    assert [(hit["kind"], hit["address"]) for hit in found["hits"]] == [("provider", world.names["mallory"])]
    (requester,) = search(api, world.names["carol"])["hits"]
    assert (requester["kind"], requester["address"]) == ("requester", world.names["carol"])
    assert requester["jobs"] == world.job_count()
    assert search(api, UNKNOWN)["hits"] == []


# ── a job's data ──


def test_job_data_of_a_demo_job(api: httpx.Client, world: World) -> None:
    demo_job = next(job for job in world.demo.jobs if job.job_id == 3)
    data = ok(api, "/v1/insights/jobs/3/data")
    spec_bytes = canonical_json(demo_job.spec)
    spec_digest = hashlib.sha256(spec_bytes).hexdigest()
    result = ok(api, "/v1/jobs/3")["result_hash"][2:]
    assert data["spec"] == demo_job.spec and data["spec_note"] is None
    assert [(i["role"], i["digest"], i["stored"]) for i in data["items"]] == [
        ("spec", spec_digest, True), ("result", result, True),
    ]  # fmt: skip
    spec_item = data["items"][0]
    assert (spec_item["size"], spec_item["cid"], spec_item["url"]) == (
        len(spec_bytes), cid_v1(bytes.fromhex(spec_digest)), f"/v1/blobs/{spec_digest}",
    )  # fmt: skip
    assert api.get(spec_item["url"]).content == spec_bytes


def test_job_data_names_the_module_and_inputs_of_its_spec(api: httpx.Client, world: World) -> None:
    stored_input = b"an input the requester uploaded"
    module = b"\x00asm\x01\x00\x00\x00"
    spec: dict[str, object] = {
        "workload": {"kind": "wasm", "module": hashlib.sha256(module).hexdigest(), "entry": "run"},
        "args": {}, "inputs": [hashlib.sha256(stored_input).hexdigest(), "0x" + "cd" * 32, "not a digest"],
        "limits": {"fuel": 1000, "memory_mb": 16, "timeout_s": 10},
    }  # fmt: skip
    for blob in (canonical_json(spec), stored_input, module):
        assert api.put("/v1/blobs", content=blob).status_code in (200, 201)
    job_id = world.post_spec(spec)
    wait_for_job(api, job_id)
    data = ok(api, f"/v1/insights/jobs/{job_id}/data")
    assert [(item["role"], item["stored"]) for item in data["items"]] == [
        ("spec", True), ("module", True), ("input", True), ("input", False),
    ]  # fmt: skip
    assert data["items"][3]["digest"] == "cd" * 32
    assert data["spec_note"] == "the spec's input 'not a digest' is not a SHA-256 digest"
    unstored = ok(api, f"/v1/insights/jobs/{world.unfinished['open']}/data")
    assert unstored["spec"] is None and [item["stored"] for item in unstored["items"]] == [False]
    assert unstored["spec_note"] == "the spec was not uploaded to this marketplace's blob store"


# ── PostgreSQL ──


def test_postgresql_gives_the_same_answers(api: httpx.Client, world: World) -> None:
    """The same chain indexed into PostgreSQL: every dashboard route answers as over SQLite."""
    from tests.postgres import PostgresServer, unavailable_reason

    if (reason := unavailable_reason()) is not None:
        pytest.skip(f"PostgreSQL not available: {reason}")
    with PostgresServer() as server:
        engine = make_engine(server.database("dashboard"))
        migrate(engine)
        rpc = RpcClient(world.node.rpc_url)
        indexer = Indexer(engine, rpc, world.chain.deployment.market, finality_depth=5)
        indexer.initialize()
        while not indexer.step().caught_up:
            pass
        rpc.close()
        job = ok(api, "/v1/jobs/3")
        paths = [
            "/v1/insights/activity?bucket=60&buckets=90", "/v1/insights/activity?bucket=7&buckets=1000",
            "/v1/insights/latency?bins=24", "/v1/insights/latency?bins=1", "/v1/insights/summary",
            *(f"/v1/insights/providers/{world.names[who]}?buckets=17" for who in ("alice", "bob", "mallory")),
            "/v1/search?q=3", f"/v1/search?q={world.names['carol']}", f"/v1/search?q={job['spec_hash']}",
            f"/v1/search?q={job['result_hash']}", "/v1/insights/jobs/3/data",
            "/v1/jobs/3", "/v1/jobs/1", "/v1/stats",  # the public point reads, on PostgreSQL too
        ]  # fmt: skip
        with serve(make_app(engine, world.blobs)) as url, httpx.Client(base_url=url, timeout=20) as http:
            assert ok(http, "/health")["indexed_block"] == ok(api, "/health")["indexed_block"]
            for path in paths:
                assert http.get(path).json() == api.get(path).json(), path
        engine.dispose()


# ── the pages and the API side by side ──


@pytest.mark.parametrize(
    "path", ["/", "/jobs", "/jobs/3", "/providers", f"/providers/{UNKNOWN}", "/search?q=3"]
)
def test_every_dashboard_path_serves_the_page(api: httpx.Client, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == (STATIC / "index.html").read_text()
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert response.headers["cache-control"] == "no-cache"


def test_assets_are_served_from_the_package(api: httpx.Client) -> None:
    script = api.get("/assets/js/main.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    chart = api.get("/assets/vendor/uPlot.esm.js")
    assert chart.status_code == 200 and "export { uPlot as default }" in chart.text
    assert api.get("/assets/nothing.js").status_code == 404


def test_the_api_is_unchanged_beside_the_dashboard(api: httpx.Client) -> None:
    assert api.get("/docs").status_code == 200
    paths = ok(api, "/openapi.json")["paths"]
    assert not [
        path
        for path in paths
        if path.startswith(("/v1/insights", "/v1/search"))
        or not path.startswith(("/v1", "/health", "/metrics"))
    ]
    missing = api.get("/no/such/page")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    assert api.get("/jobs/not-a-number").status_code == 404


def test_market_serve_prints_the_dashboard_url_and_serves_it(world: World, tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "marketplace.cli", "market", "serve", "--rpc", world.node.rpc_url,
            "--market", world.chain.deployment.market, "--db", f"sqlite:///{tmp_path / 'market.db'}",
            "--blobs", str(tmp_path / "blobs"), "--port", str(port),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        assert server.stdout is not None
        for line in server.stdout:
            if "dashboard at" in line:
                assert f"dashboard at {url}  (API docs at {url}docs)" in line
                break
        else:
            pytest.fail("market serve ended without printing the dashboard URL")
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "market serve did not answer"
                time.sleep(0.1)
        assert page.status_code == 200 and '<script type="module" src="/assets/js/main.js">' in page.text
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_without_its_built_assets_the_dashboard_says_how_to_build_them(tmp_path: Path) -> None:
    static = tmp_path / "static"
    shutil.copytree(STATIC, static, ignore=shutil.ignore_patterns("vendor"))
    app = FastAPI()
    install_dashboard(app, static)
    with TestClient(app) as client:
        response = client.get("/jobs/3")
    assert response.status_code == 503
    assert "make assets" in response.text and "vendor/uPlot.esm.js" in response.text


# ── bad input ──

BAD_REQUESTS = [
    ("/v1/search", {}, 422, "query parameter 'q'"),
    ("/v1/search", {"q": ""}, 400, "the search query is empty"),
    ("/v1/search", {"q": "   "}, 400, "the search query is empty"),
    ("/v1/search", {"q": "hello"}, 400, "'hello' is not a job id, an address"),
    ("/v1/search", {"q": "0x" + "zz" * 20}, 400, "is not an address"),
    ("/v1/search", {"q": "0x15D34aaf54267db7d7c367839aaf71a00a2c6a65"}, 400, "EIP-55 checksum"),
    ("/v1/search", {"q": "9" * 20}, 400, "is not a job id"),
    ("/v1/search", {"q": "99999999999999999999"[:19] + "9"}, 400, "is not a job id"),
    ("/v1/search", {"q": "x" * 201}, 422, "query parameter 'q'"),
    ("/v1/search", {"q": "bafkrei" + "1" * 52}, 400, "is not a job id"),  # 1 is not base32
    ("/v1/search", {"q": "bafybei" + "a" * 52}, 400, "is not a job id"),  # a dag-pb CID, not raw
    ("/v1/insights/activity", {"bucket": "0"}, 422, "query parameter 'bucket'"),
    ("/v1/insights/activity", {"buckets": "1441"}, 422, "query parameter 'buckets'"),
    ("/v1/insights/activity", {"bucket": "minute"}, 422, "query parameter 'bucket'"),
    ("/v1/insights/latency", {"bins": "0"}, 422, "query parameter 'bins'"),
    ("/v1/insights/providers/0x1234", {}, 422, "is not an address"),
    (f"/v1/insights/providers/{UNKNOWN}", {}, 404, f"no provider {UNKNOWN}"),
    (f"/v1/insights/providers/{UNKNOWN}", {"buckets": "501"}, 422, "query parameter 'buckets'"),
    ("/v1/insights/jobs/999999/data", {}, 404, "no job 999999"),
    ("/v1/insights/jobs/-1/data", {}, 422, "path parameter 'job_id'"),
    ("/v1/insights/jobs/99999999999999999999/data", {}, 422, "path parameter 'job_id'"),
]


@pytest.mark.parametrize(
    ("path", "params", "status", "message"), BAD_REQUESTS, ids=[f"{r[0]} {r[1]}" for r in BAD_REQUESTS]
)
def test_bad_input_gets_a_4xx_saying_what_is_wrong(
    api: httpx.Client, path: str, params: dict[str, str], status: int, message: str
) -> None:
    response = api.get(path, params=params)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
ROUTES = [
    "/v1/search?q={}", "/v1/insights/activity?bucket={}", "/v1/insights/activity?buckets={}",
    "/v1/insights/latency?bins={}", "/v1/insights/providers/{}", "/v1/insights/jobs/{}/data",
]  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(route=st.sampled_from(ROUTES), value=texts)
def test_no_input_makes_the_dashboard_routes_fail(api: httpx.Client, route: str, value: str) -> None:
    response = api.get(route.format(quote(value, safe="")))
    assert response.status_code < 500, (route, value, response.text)
