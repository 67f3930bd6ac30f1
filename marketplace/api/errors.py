"""API errors and the handlers that turn every failure into a JSON answer with a clear `detail`.

Bad input is a 4xx saying what is wrong; anything unexpected is logged with its traceback and
answered as a JSON 500, never as a bare HTML page.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from ..protocol.errors import MarketError
from ..store.blobs import BlobError, BlobNotFound, BlobTooLarge, DigestMismatch, InvalidDigest

log = logging.getLogger("cmarket.api")


class ApiError(MarketError):
    """A request the API refuses; `status_code` says how."""

    status_code = 400


class BadRequest(ApiError):
    status_code = 400


class NotFound(ApiError):
    status_code = 404


_BLOB_STATUS: dict[type[BlobError], int] = {
    InvalidDigest: 400,
    DigestMismatch: 400,
    BlobNotFound: 404,
    BlobTooLarge: 413,
}

_LOCATIONS = {"query": "query parameter", "path": "path parameter", "header": "header", "body": "body"}


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One readable sentence per invalid parameter, e.g. "query parameter 'limit': ..."."""
    messages = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        where = _LOCATIONS.get(location[0], location[0]) if location else "request"
        name = ".".join(location[1:])
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        messages.append(f"{where} {name!r}: {message}" if name else f"{where}: {message}")
    return "; ".join(messages)


def _detail(status_code: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status_code)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _detail(exc.status_code, str(exc))


async def _blob_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BlobError)
    status_code = next((code for kind, code in _BLOB_STATUS.items() if isinstance(exc, kind)), 500)
    if isinstance(exc, DigestMismatch):
        return _detail(status_code, str(exc), expected=exc.expected, actual=exc.actual)
    response = _detail(status_code, str(exc))
    if isinstance(exc, BlobTooLarge):
        # Otherwise the server would read and discard the rest of the body to keep the connection.
        response.headers["Connection"] = "close"
    return response


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    # `errors` keeps FastAPI's usual structured list for clients that read it.
    return _detail(422, describe_validation_errors(errors), errors=_jsonable(errors))


async def _client_disconnect(request: Request, _exc: Exception) -> JSONResponse:
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return _detail(400, "the client disconnected before sending the whole request")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return _detail(500, f"internal error ({type(exc).__name__}); it has been logged")


def _jsonable(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors without their `ctx`/`input` objects, which are not always JSON."""
    return [{key: error[key] for key in ("type", "loc", "msg") if key in error} for error in errors]


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(BlobError, _blob_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(Exception, _unexpected)
