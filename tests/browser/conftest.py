"""Fixtures of the dashboard tests: the served market (session), Debian's Chromium, and pages whose
console errors fail the test that caused them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.browser.support import ARTIFACTS, ConsoleLog
from tests.browser.world import World, build_world, make_app, serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with build_world(tmp_path_factory.mktemp("dashboard")) as built:
        yield built


@pytest.fixture(scope="package")
def dashboard(world: World) -> Iterator[str]:
    """The base URL of the API and dashboard over the live-indexed market."""
    with serve(make_app(world.engine, world.blobs)) as url:
        yield url


@pytest.fixture(scope="package")
def api(dashboard: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard, timeout=20) as client:
        yield client


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: `make chromium` installs it "
            "(apt-get install -y --no-install-recommends chromium); Playwright's own browsers are not used",
            pytrace=False,
        )
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def console() -> ConsoleLog:
    return ConsoleLog()


@pytest.fixture
def page(browser: Browser, dashboard: str, console: ConsoleLog) -> Iterator[Page]:
    """A fresh browser context at desktop size on the dashboard; fails on any console error."""
    context = browser.new_context(base_url=dashboard, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    yield page
    context.close()
    unexpected = console.unexpected()
    assert not unexpected, "console errors:\n" + "\n".join(unexpected)


@pytest.fixture(scope="package")
def artifacts() -> Path:
    """Where screenshots go (test-artifacts/screenshots/, gitignored), emptied once per session."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS
