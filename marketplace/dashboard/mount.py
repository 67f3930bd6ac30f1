"""Serves the dashboard: the same page shell at each of its paths, its scripts and styles under `/assets`.

Pages route in the browser (History API), so every dashboard path answers the one `index.html`;
the API's own paths (`/v1/...`, `/health`, `/docs`) are untouched and unknown paths stay 404. The
chart library is copied from node_modules into `static/vendor/` by `make assets`: without it the
pages cannot draw, so they answer a 503 page saying how to build it instead of a blank page.
"""

from __future__ import annotations

import logging
import os
from html import escape
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

log = logging.getLogger("cmarket.dashboard")

STATIC = Path(__file__).parent / "static"
VENDOR_FILES = ("vendor/uPlot.esm.js", "vendor/uPlot.min.css")
PAGES = ("/", "/jobs", "/jobs/{job_id:int}", "/providers", "/providers/{address}", "/search")

# Everything comes from this origin: no CDN, no inline script. uPlot sizes its elements through
# the CSSOM, which style-src does not restrict.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def missing_assets(static: Path = STATIC) -> list[str]:
    """The built front-end files that are not there (empty when the dashboard is complete)."""
    return [name for name in VENDOR_FILES if not (static / name).is_file()]


def assets_problem(static: Path = STATIC) -> str | None:
    """A sentence saying what is missing and how to build it, or None."""
    missing = missing_assets(static)
    if not missing:
        return None
    return (
        f"the dashboard's front-end files {', '.join(missing)} are missing from {static}: "
        "run `make assets` (it copies uPlot from node_modules; `npm ci` first on a fresh clone)"
    )


class RevalidatedFiles(StaticFiles):
    """Static files the browser revalidates on every load (a cheap 304 by ETag), so a new version
    of the dashboard's scripts is never mixed with cached old ones."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _unavailable_page(problem: str) -> HTMLResponse:
    body = (
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>Dashboard unavailable</title>'
        "<h1>The ComputeMarket dashboard is not built</h1>"
        f'<p>{escape(problem)}.</p><p>The API still works: see <a href="/docs">/docs</a>.</p></html>'
    )
    return HTMLResponse(body, status_code=503, headers=_PAGE_HEADERS)


def install_dashboard(app: FastAPI, static: Path = STATIC) -> None:
    """Adds the dashboard's pages and assets to `app` (kept out of its OpenAPI document)."""
    problem = assets_problem(static)
    if problem is not None:
        log.error("%s", problem)
    index = static / "index.html"

    async def page() -> Response:
        # Checked per request, so building the assets while the server runs is enough.
        problem = assets_problem(static)
        if problem is not None:
            return _unavailable_page(problem)
        return FileResponse(index, media_type="text/html", headers=_PAGE_HEADERS)

    for path in PAGES:
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
    app.mount("/assets", RevalidatedFiles(directory=static), name="dashboard-assets")
