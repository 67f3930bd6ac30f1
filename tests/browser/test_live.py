"""The dashboard while the market moves and while things fail: live updates from the event stream
without a reload, and a banner (over the data last shown) when the service, the index or the chain
is not keeping up."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import Engine, update

from marketplace.api.app import create_app
from marketplace.api.settings import ApiSettings
from marketplace.chain.devnet import free_port
from marketplace.chain.rpc import RpcClient
from marketplace.indexer.sync import Indexer
from marketplace.store.database import make_engine
from marketplace.store.schema import ChainState
from tests.browser.support import ConsoleLog, screenshot
from tests.browser.world import ETHER, World, make_app, serve

pytestmark = pytest.mark.browser

LIVE_DEADLINE_MS = 2_000


def mark_document(page: Page) -> None:
    """A property only this document has: if it is still there later, the page was not reloaded."""
    page.evaluate("window.__sameDocument = true")


def assert_same_document(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"


def wait_live(page: Page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")


def test_a_job_posted_now_appears_in_the_table_within_two_seconds(
    page: Page, world: World, artifacts: Path
) -> None:
    page.goto("/jobs")
    table = page.get_by_role("region", name="Jobs, newest first; updated live")
    expect(table.locator("tbody tr").first).to_be_visible()
    wait_live(page)
    mark_document(page)
    older = table.locator("tbody tr").first.get_attribute("data-job-id")
    keep = f"document.querySelector('tr[data-job-id=\"{older}\"]')"
    page.evaluate(f"{keep}.__kept = true")  # a mark on that row's node, not on its content
    job_id = world.post_job("live")
    posted = time.monotonic()
    row = table.locator(f'tr[data-job-id="{job_id}"]')
    expect(row).to_be_visible(timeout=LIVE_DEADLINE_MS)
    assert time.monotonic() - posted < LIVE_DEADLINE_MS / 1000
    expect(row).to_have_attribute("data-status", "open")
    expect(table.locator("tbody tr").first).to_have_attribute("data-job-id", str(job_id))  # newest first
    world.demo.wait_for_seats([job_id], [world.demo.alice])  # the draw's turn for alice
    world.demo.alice.claim(job_id)  # its only slot: the job starts
    expect(row).to_have_attribute("data-status", "running", timeout=LIVE_DEADLINE_MS)
    expect(row).to_contain_text("1/1")
    assert page.evaluate(f"{keep}.__kept === true"), "a row that did not change was drawn again"
    assert_same_document(page)
    screenshot(page, artifacts, "jobs-live")


def test_overview_counts_and_job_page_follow_the_stream(page: Page, api: httpx.Client, world: World) -> None:
    page.goto("/")
    open_count = page.locator('li[data-status="open"] .count')
    expect(open_count).to_have_text(str(api.get("/v1/stats").json()["jobs_by_status"]["open"]))
    wait_live(page)
    mark_document(page)
    before = int(open_count.inner_text())
    job_id = world.post_job("overview")
    expect(open_count).to_have_text(
        str(before + 1), timeout=LIVE_DEADLINE_MS + 1000
    )  # figures coalesce for 1 s
    expect(
        page.get_by_role("region", name="The latest jobs; updated live").locator("tbody tr").first
    ).to_have_attribute("data-job-id", str(job_id), timeout=LIVE_DEADLINE_MS)
    page.get_by_role("link", name=f"#{job_id}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Job #{job_id} open")
    world.demo.wait_for_seats([job_id], [world.demo.bob])
    world.demo.bob.claim(job_id)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Job #{job_id} running", timeout=LIVE_DEADLINE_MS
    )
    expect(page.locator(f'tr[data-provider="{world.names["bob"]}"]')).to_contain_text("claimed")
    assert_same_document(page)


def test_the_banner_says_when_the_service_is_unreachable_and_the_data_stays(
    page: Page, world: World, console: ConsoleLog, artifacts: Path
) -> None:
    console.allow(r"net::ERR_")  # Chromium logs each refused connection while the service is down
    port = free_port()
    with serve(make_app(world.engine, world.blobs), port):
        page.goto(f"http://127.0.0.1:{port}/jobs")
        rows = page.get_by_role("region", name="Jobs, newest first; updated live").locator("tbody tr")
        expect(rows.first).to_be_visible()
        wait_live(page)
        shown = rows.count()
        expect(page.locator("#banner")).to_be_hidden()
    banner = page.locator("#banner")
    expect(banner).to_be_visible(timeout=6_000)
    expect(banner).to_contain_text("Cannot reach the marketplace service")
    expect(banner).to_have_attribute("data-level", "error")
    expect(rows).to_have_count(shown)  # the last known jobs are still on the page
    expect(page.locator("#live-status")).not_to_have_attribute("data-state", "open")
    screenshot(page, artifacts, "banner-unreachable")
    with serve(make_app(world.engine, world.blobs), port):
        expect(banner).to_be_hidden(timeout=8_000)
        wait_live(page)
        expect(rows.first).to_be_visible()
        page.goto("about:blank")


@contextmanager
def copied_store(world: World, directory: Path) -> Iterator[Engine]:
    path = directory / "copy.db"
    with sqlite3.connect(world.db_path) as source, sqlite3.connect(path) as target:
        source.backup(target)
    engine = make_engine(f"sqlite:///{path}")
    try:
        yield engine
    finally:
        engine.dispose()


def test_the_banner_says_when_the_index_is_behind(
    page: Page, world: World, tmp_path: Path, artifacts: Path
) -> None:
    with copied_store(world, tmp_path) as engine:
        with engine.begin() as connection:  # the indexer has seen a head 50 blocks past what it indexed
            connection.execute(update(ChainState).values(head_block=ChainState.last_block + 50))
        with serve(make_app(engine, world.blobs)) as url:
            page.goto(f"{url}/")
            banner = page.locator("#banner")
            expect(banner).to_contain_text(
                re.compile(r"The index is behind the chain \(block [0-9,]+ of [0-9,]+, 50 blocks behind\)")
            )
            expect(banner).to_have_attribute("data-level", "warn")
            expect(page.locator('li[data-status="completed"] .count')).to_have_text(
                "14"
            )  # figures still shown
            screenshot(page, artifacts, "banner-indexing")
            page.goto("about:blank")  # leave before this server stops, or its absence is logged


def test_the_banner_says_when_the_indexer_cannot_reach_the_chain(
    page: Page, world: World, tmp_path: Path, artifacts: Path
) -> None:
    dead_rpc = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the chain is down
    with copied_store(world, tmp_path) as engine:
        rpc = RpcClient(dead_rpc)
        indexer = Indexer(engine, rpc, world.chain.deployment.market, finality_depth=5)
        app = create_app(
            engine, world.blobs, ApiSettings(stream_poll_seconds=0.05), indexer_status=indexer.status
        )
        stop = threading.Event()
        thread = threading.Thread(target=indexer.run, args=(stop,), daemon=True)
        thread.start()
        try:
            with serve(app) as url:
                page.goto(f"{url}/jobs/3")
                expect(page.get_by_role("heading", level=1)).to_have_text("Job #3 completed")
                banner = page.locator("#banner")
                expect(banner).to_contain_text("The indexer cannot reach the chain", timeout=8_000)
                expect(banner).to_contain_text("Showing the market as of block")
                expect(page.locator(f'tr[data-provider="{world.names["mallory"]}"]')).to_be_visible()
                screenshot(page, artifacts, "banner-chain-down")
                page.goto("about:blank")
        finally:
            stop.set()
            thread.join(timeout=10)
            rpc.close()


def test_a_page_reads_again_what_a_reorg_undid(page: Page, world: World) -> None:
    newcomer = world.chain.actor(world.node, 7)  # an actor of its own: the reorg rewinds its nonce
    newcomer.register("test://newcomer")
    newcomer.stake(ETHER)
    job_id = world.post_job("reorg")
    page.goto(f"/jobs/{job_id}")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(f"Job #{job_id} open")
    wait_live(page)
    mark_document(page)
    world.demo.wait_for_seats([job_id], [newcomer])  # the draw's turn for the newcomer
    newcomer.claim(job_id)
    expect(heading).to_have_text(f"Job #{job_id} running", timeout=LIVE_DEADLINE_MS)
    world.node.call("anvil_reorg", 1, [])  # the block with the claim gives way to an empty one
    # No event of this job announces it: only the stream's reorg notice can tell the page.
    expect(heading).to_have_text(f"Job #{job_id} open", timeout=LIVE_DEADLINE_MS + 1000)
    expect(page.locator(f'tr[data-provider="{newcomer.address}"]')).to_have_count(0)
    assert_same_document(page)
