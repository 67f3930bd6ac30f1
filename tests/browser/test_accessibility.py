"""The dashboard for people who use a keyboard, a screen reader or a phone: focus order and visible
focus, labels and text alternatives, WCAG AA contrast in both colour schemes, and no sideways page
scrolling at 360 pixels wide."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.support import ConsoleLog, screenshot
from tests.browser.world import World

pytestmark = pytest.mark.browser

# Text whose contrast (WCAG 2.x) against the first opaque background behind it is below 4.5:1.
LOW_CONTRAST = """
(selectors) => {
  const parse = (color) => (color.match(/[0-9.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const background = (element) => {
    for (let node = element; node && node.nodeType === 1; node = node.parentElement) {
      const value = parse(getComputedStyle(node).backgroundColor);
      if (value.length === 3 || (value.length === 4 && value[3] === 1)) return value;
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const element of document.querySelectorAll(selectors)) {
    if (!element.checkVisibility() || !element.innerText.trim()) continue;
    const [a, b] = [luminance(parse(getComputedStyle(element).color)), luminance(background(element))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const text = element.innerText.slice(0, 30);
    if (ratio < 4.5) low.push(`${element.tagName}.${element.className} ${text}: ${ratio.toFixed(2)}`);
  }
  return low;
}
"""
TEXT = (
    "h1, h2, p, th, td, a, .muted, .card dt, .card dd, .site-footer, .badge, button, input, select, caption, "
    "figcaption, summary, time, .amount, #banner, .u-legend th"
)


def test_keyboard_reaches_everything_in_order_and_sees_where_it_is(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Market overview")
    expected = ["Skip to content", "ComputeMarket", "Overview", "Jobs", "Providers"]
    for name in expected:
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent.trim()") == name
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        width = page.evaluate("parseFloat(getComputedStyle(document.activeElement).outlineWidth)")
        assert outline != "none" and width >= 2, f"{name}: focus is not visible"
    page.keyboard.press("Tab")
    expect(page.get_by_role("searchbox", name="Search by job id, address or digest")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")  # back to "Jobs"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/jobs$"))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Jobs")
    expect(heading).to_be_focused()  # a screen reader announces the new page
    expect(page.get_by_role("link", name="Jobs", exact=True)).to_have_attribute("aria-current", "page")


def test_the_skip_link_moves_focus_to_the_content(page: Page) -> None:
    page.goto("/jobs/3")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Job #3")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()  # off screen until focused
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("main :focus")).to_have_count(1)  # the next stop is inside the content
    expect(page.get_by_role("heading", level=1)).to_contain_text("Job #3")  # the page was not re-rendered


def test_chart_numbers_open_from_the_keyboard(page: Page) -> None:
    page.goto("/")
    figure = page.locator("figure", has=page.locator("figcaption", has_text="Jobs by status over time"))
    expect(figure.get_by_role("img")).to_have_attribute("aria-label", re.compile(r"At the end: \d+ open"))
    summary = figure.locator("summary")
    summary.focus()
    page.keyboard.press("Enter")
    numbers = figure.get_by_role("region", name="Jobs by status over time: the numbers")
    expect(numbers.locator("tbody tr")).to_have_count(60)
    expect(numbers.locator("thead th")).to_have_text(
        ["Time", "Open", "Running or revealing", "Completed", "Failed", "Cancelled"]
    )


@pytest.mark.parametrize("path", ["/", "/jobs", "/jobs/3", "/providers"])
def test_every_control_and_picture_is_named(page: Page, path: str) -> None:
    page.goto(path)
    expect(page.locator("main h1")).to_have_count(1)
    expect(page.locator("main table, main .status-counts, main .facts").first).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "en"
    unnamed = page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)]
            .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || el.textContent.trim()))
            .map((el) => el.outerHTML.slice(0, 120))""",
        "a, button, input, select, summary, [role=img], [role=region]",
    )
    assert unnamed == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_is_at_least_4_5_to_1(
    browser: Browser, dashboard: str, world: World, scheme: str
) -> None:
    context = browser.new_context(base_url=dashboard, color_scheme=scheme)  # type: ignore[arg-type]
    page = context.new_page()
    try:
        for path in ("/", "/jobs/3", f"/providers/{world.names['mallory']}"):
            page.goto(path)
            expect(page.locator("main h2").first).to_be_visible()
            expect(page.locator("main .badge").first).to_be_visible()
            assert page.evaluate(LOW_CONTRAST, TEXT) == [], path
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/", "/jobs", "/jobs/3", "/providers", "mallory"])
def test_a_360_pixel_screen_needs_no_sideways_scrolling(
    browser: Browser, dashboard: str, world: World, console: ConsoleLog, artifacts: Path, path: str
) -> None:
    context = browser.new_context(base_url=dashboard, viewport={"width": 360, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    try:
        page.goto(f"/providers/{world.names['mallory']}" if path == "mallory" else path)
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main table").first).to_be_visible()
        page.wait_for_timeout(300)  # charts fit themselves to the width they were given
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"{path}: the page is {width}px wide"
        expect(page.get_by_role("searchbox", name="Search by job id, address or digest")).to_be_in_viewport()
        name = {"/": "overview", "/jobs": "jobs", "/jobs/3": "job", "/providers": "providers"}.get(
            path, "provider"
        )
        screenshot(page, artifacts, f"narrow-{name}")
    finally:
        context.close()
    assert console.unexpected() == []
