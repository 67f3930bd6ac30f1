"""Request latency into the Prometheus HTTP_LATENCY histogram, labelled by route template.

A plain ASGI middleware (no per-request task or body buffering). Latency is measured until the
response headers are sent, which for JSON answers is after all the work and for streams (blobs,
Server-Sent Events) is the time to the first byte rather than the life of the stream. The route
label is the matched template (`/v1/jobs/{job_id}`), never the raw path, so label cardinality
stays bounded; unmatched paths are "unmatched" and unusual methods "other".
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import HTTP_LATENCY

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class LatencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        recorded = False

        def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            method = scope["method"] if scope["method"] in _METHODS else "other"
            HTTP_LATENCY.labels(method, _route_template(scope), str(status)).observe(
                time.perf_counter() - started
            )

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not recorded:
                record(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        except BaseException:
            if not recorded:
                record(500)
            raise
