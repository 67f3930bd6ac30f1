"""Each dashboard page in headless Chromium against the live-indexed devnet market: the figures it
shows are the API's, and a screenshot of it is kept in test-artifacts/screenshots/."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from marketplace.protocol.hashing import cid_v1
from tests.browser.support import ConsoleLog, screenshot
from tests.browser.world import COLLATERAL, World

pytestmark = pytest.mark.browser

STATUSES = ("open", "running", "revealing", "completed", "failed", "cancelled")


def test_overview_shows_the_counts_of_the_stats_route(
    page: Page, api: httpx.Client, world: World, artifacts: Path
) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Market overview")
    counts = page.get_by_role("list", name="Jobs by status")
    expect(counts.locator("li")).to_have_count(len(STATUSES))
    stats = api.get("/v1/stats").json()
    for status in STATUSES:
        expect(counts.locator(f'li[data-status="{status}"] .count')).to_have_text(
            str(stats["jobs_by_status"][status])
        )
    assert all(stats["jobs_by_status"][status] > 0 for status in STATUSES)  # a market with every state
    expect(page.locator('[data-figure="jobs-total"]')).to_have_text(str(stats["jobs_total"]))
    expect(page.locator('[data-figure="slashes"]')).to_have_text("3")  # mallory twice, bob once
    active = api.get("/v1/insights/summary").json()["providers_active"]
    expect(page.locator('[data-figure="providers-active"]')).to_have_text(str(active))
    for caption in ("Jobs per minute", "Jobs by status over time", "Time to completion"):
        figure = page.locator("figure", has=page.locator("figcaption", has_text=caption))
        expect(figure.locator("canvas")).to_have_count(1)
    expect(
        page.get_by_role("region", name="The latest jobs; updated live").locator("tbody tr")
    ).to_have_count(10)
    screenshot(page, artifacts, "overview")


def test_jobs_page_lists_every_job_with_readable_values(page: Page, world: World, artifacts: Path) -> None:
    page.goto("/jobs")
    table = page.get_by_role("region", name="Jobs, newest first; updated live")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(min(25, world.job_count()))  # the first page
    first = table.locator('tr[data-job-id="1"]')
    amount = first.locator(".amount")
    expect(amount).to_have_text("0.05 ETH")
    expect(amount).to_have_attribute("title", "50,000,000,000,000,000 wei")
    tusd = table.locator('tr[data-job-id="2"] .amount')
    expect(tusd).to_have_text("20 tokens")
    expect(tusd).to_have_attribute(
        "title", f"20,000,000,000,000,000,000 base units of token {world.chain.token} (18 decimals assumed)"
    )
    carol = world.names["carol"]
    requester = first.get_by_role("link", name=f"{carol[:6]}…{carol[-4:]}")
    expect(requester).to_have_attribute("title", carol)
    posted = first.locator("time")
    expect(posted).to_have_text(re.compile(r"ago|just now"))
    expect(posted).to_have_attribute("title", re.compile(r"UTC|Z, block time"))
    page.get_by_label("Status").select_option("failed")
    expect(page).to_have_url(re.compile(r"/jobs\?status=failed$"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-job-id", "5")
    page.get_by_label("Status").select_option("")
    expect(rows).to_have_count(min(25, world.job_count()))
    screenshot(page, artifacts, "jobs")


def test_copy_buttons_copy_the_full_address(page: Page, world: World) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/jobs")
    carol = world.names["carol"]
    button = page.locator('tr[data-job-id="1"]').get_by_role("button", name=f"Copy address {carol}")
    # The element itself, not the locator: the feedback is on the very button that was clicked.
    clicked = button.element_handle()
    clicked.click()
    page.wait_for_function("button => button.textContent === 'Copied'", arg=clicked, timeout=5_000)
    assert page.evaluate("navigator.clipboard.readText()") == carol


def test_job_page_shows_assignments_outcome_data_and_timeline(
    page: Page, api: httpx.Client, world: World, artifacts: Path
) -> None:
    job = api.get("/v1/jobs/3").json()  # three replicas; mallory revealed a wrong result
    page.goto("/jobs/3")
    expect(page.get_by_role("heading", level=1)).to_have_text("Job #3 completed")
    assignments = page.get_by_role("region", name="Replica slots: claim, commit–reveal and outcome")
    outcomes = {name: "won" for name in ("alice", "bob")} | {"mallory": "slashed"}
    for name, outcome in outcomes.items():
        slot = assignments.locator(f'tr[data-provider="{world.names[name]}"]')
        expect(slot).to_have_attribute("data-outcome", outcome)
        expect(slot.locator(".badge")).to_have_text(outcome)
    mallory = assignments.locator(f'tr[data-provider="{world.names["mallory"]}"]')
    expect(mallory).to_contain_text("(differs)")
    expect(mallory).to_contain_text("0.1 ETH")  # the collateral taken
    expect(assignments.locator(f'tr[data-provider="{world.names["alice"]}"]')).to_contain_text("(the result)")
    for seat in job["assignments"]:  # each claimer's draw ticket, as a fraction of its range
        fraction = (int(seat["ticket"], 16) * 10_000 >> 64) / 10_000
        expect(assignments.locator(f'[title="ticket {seat["ticket"]}"]')).to_have_text(f"{fraction:.4f}")
    expect(page.locator("dl.facts")).to_contain_text(f"Draw seed{job['seed']}")
    result = job["result_hash"]
    expect(page.locator(f'[title="{result}"]').first).to_be_visible()
    data = page.get_by_role("region", name=re.compile("Spec, inputs and result by SHA-256 digest"))
    spec_digest = job["spec_hash"][2:]
    spec_row = data.locator('tr[data-role="spec"]')
    expect(spec_row).to_contain_text(f"{cid_v1(bytes.fromhex(spec_digest))[:12]}…")
    download = spec_row.get_by_role("link", name=re.compile("Download"))
    expect(download).to_have_attribute("href", f"/v1/blobs/{spec_digest}")
    body = page.request.get(download.get_attribute("href") or "").body()
    assert hashlib.sha256(body).hexdigest() == spec_digest
    expect(
        data.locator('tr[data-role="result"]').get_by_role("link", name=re.compile("Download"))
    ).to_have_attribute("href", f"/v1/blobs/{result[2:]}")
    expect(page.get_by_label("The job spec (JSON)")).to_contain_text('"iterated-sha256"')
    timeline = page.locator("ol.timeline > li")
    expect(timeline).to_have_count(len(job["timeline"]))
    expect(timeline.first).to_have_attribute("data-event", "JobPosted")
    expect(page.locator('ol.timeline > li[data-event="Slashed"]')).to_contain_text("0.1 ETH")
    expect(timeline.last).to_have_attribute("data-event", "JobFinalized")
    screenshot(page, artifacts, "job")


def test_a_failed_and_a_cancelled_job(page: Page) -> None:
    page.goto("/jobs/5")
    expect(page.get_by_role("heading", level=1)).to_have_text("Job #5 failed")
    expect(page.locator(".facts")).to_contain_text("none: no quorum")
    expect(page.locator('tr[data-outcome="returned"]')).to_have_count(2)
    page.goto("/jobs/6")
    expect(page.get_by_role("heading", level=1)).to_have_text("Job #6 cancelled")
    expect(page.get_by_text("No provider has claimed a slot.")).to_be_visible()


def test_provider_page_shows_its_slashes(
    page: Page, api: httpx.Client, world: World, artifacts: Path
) -> None:
    mallory = world.names["mallory"]
    page.goto(f"/providers/{mallory}")
    expect(page.locator('[data-figure="slashed"]')).to_have_text("2")
    expect(page.locator('[data-figure="completed"]')).to_have_text("0")
    slashes = page.get_by_role("region", name="Collateral taken for wrong or missing results")
    expect(slashes.locator("tbody tr")).to_have_count(2)
    for job_id in (3, 4):
        expect(slashes.locator(f'tr[data-job-id="{job_id}"]')).to_contain_text(f"{COLLATERAL / 10**18:g} ETH")
    for caption in ("Reputation", "Earnings over time", "Settled assignments"):
        figure = page.locator("figure", has=page.locator("figcaption", has_text=caption))
        expect(figure.locator("canvas")).to_have_count(1)
    expect(page.locator("figure", has_text="Reputation").locator(".plot")).to_have_attribute(
        "aria-label", re.compile("Now 0%")
    )
    screenshot(page, artifacts, "provider")
    page.goto(f"/providers/{world.names['alice']}")
    expect(page.get_by_text("Never slashed.")).to_be_visible()
    expect(page.locator("figure", has_text="Reputation").locator(".plot")).to_have_attribute(
        "aria-label", re.compile("Now 100%")
    )


def test_providers_page(page: Page, api: httpx.Client, world: World, artifacts: Path) -> None:
    page.goto("/providers")
    rows = page.get_by_role("region", name="Providers by address").locator("tbody tr")
    expect(rows).to_have_count(len(api.get("/v1/providers").json()["providers"]))  # the demo's and the tests'
    expect(rows.filter(has_text="demo://")).to_have_count(0)  # metadata is on the provider's own page
    expect(page.locator(f'tr[data-address="{world.names["mallory"]}"]')).to_contain_text("0.2 ETH")
    page.locator(f'tr[data-address="{world.names["bob"]}"]').get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(f"/providers/{world.names['bob']}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Provider")
    screenshot(page, artifacts, "providers")


def search(page: Page, text: str) -> None:
    box = page.get_by_role("searchbox", name="Search by job id, address or digest")
    box.fill(text)
    box.press("Enter")


def test_search_finds_a_job_by_id_and_by_digest(page: Page, api: httpx.Client, artifacts: Path) -> None:
    page.goto("/")
    search(page, "5")
    expect(page).to_have_url(re.compile(r"/jobs/5$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Job #5 failed")
    spec = api.get("/v1/jobs/3").json()["spec_hash"]
    search(page, spec)
    expect(page).to_have_url(re.compile(r"/search\?q=0x"))
    hit = page.locator('.hits li[data-kind="job"][data-job-id="3"]')
    expect(hit).to_contain_text("matches its spec hash")
    expect(page.locator('.hits li[data-kind="blob"]')).to_be_visible()  # the stored spec itself
    screenshot(page, artifacts, "search")
    result = api.get("/v1/jobs/2").json()["result_hash"]
    search(page, result[2:].upper())
    expect(page.locator('.hits li[data-kind="job"][data-job-id="2"]')).to_contain_text("settled result hash")
    hit.wait_for(state="detached")
    search(page, cid_v1(bytes.fromhex(spec[2:])))
    expect(page.locator('.hits li[data-kind="job"][data-job-id="3"]')).to_be_visible()
    hit.page.go_back()
    expect(page.locator('.hits li[data-kind="job"][data-job-id="2"]')).to_be_visible()


def test_search_by_address_and_for_nothing(page: Page, world: World, console: ConsoleLog) -> None:
    console.allow(r"status of 400")  # the refused query below is answered 400, which Chromium logs
    page.goto("/")
    search(page, world.names["mallory"].lower())
    expect(page.locator('.hits li[data-kind="provider"]')).to_be_visible()
    search(page, world.names["carol"])
    expect(page.locator('.hits li[data-kind="requester"]')).to_contain_text("posted")
    search(page, "hello")
    expect(page.get_by_role("alert")).to_contain_text("is not a job id, an address")
    search(page, "999999")
    expect(page.get_by_role("status").filter(has_text="Nothing in this market")).to_be_visible()
