"""`PUT /v1/blobs` and `GET /v1/blobs/{digest}`: content-addressed, verified, size-limited, streamed;
and their batch forms for the many small blobs of many small jobs: `POST /v1/blobs/batch` stores
several in one request, `POST /v1/blobs/query` fetches several."""

from __future__ import annotations

import base64
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from ...store.blobs import BlobNotFound, BlobReader, BlobStore, BlobTooLarge, normalize_digest
from ..deps import BlobsDep, SettingsDep
from ..errors import BadRequest
from ..schemas import Blob, BlobBatch, BlobQuery, Error, FoundBlobs, StoredBlobs
from ..settings import ApiSettings

router = APIRouter(prefix="/v1/blobs", tags=["blobs"])
SMALL_BLOB = 64 * 1024  # answered in one read (GET), inline in a query
QUERY_ANSWER_BYTES = 8 * 1024 * 1024  # what one query answers at most; the rest is deferred

_RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.put(
    "",
    status_code=201,
    summary="Store a blob (the raw request body) under its SHA-256",
    openapi_extra=_RAW_BODY,
    responses={
        200: {"model": Blob, "description": "The store already held this blob"},
        400: {"model": Error, "description": "Bad `sha256`, or the body does not hash to it"},
        413: {"model": Error, "description": "Larger than the service's blob limit"},
    },
)
async def upload_blob(
    request: Request,
    response: Response,
    blobs: BlobsDep,
    settings: SettingsDep,
    sha256: Annotated[
        str | None,
        Query(max_length=80, description="expected digest: refuse the body unless it hashes to it"),
    ] = None,
) -> Blob:
    """The body is streamed to disk and hashed on the way; it is stored only once complete,
    within the limit and matching `sha256`. Storing a blob again answers 200 with the same body."""
    expected = normalize_digest(sha256) if sha256 is not None else None
    _refuse_declared_over(request, settings.max_blob_bytes)
    info = await blobs.put_async(request.stream(), max_bytes=settings.max_blob_bytes, expected=expected)
    if not info.created:
        response.status_code = 200
    return Blob(digest=info.digest, cid=info.cid, size=info.size)


@router.get(
    "/{digest}",
    summary="Download a blob by its SHA-256 (hex, optionally 0x-prefixed)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The blob's bytes"},
        304: {"description": "The client's copy (If-None-Match) is current"},
        400: {"model": Error, "description": "Not a SHA-256 digest"},
        404: {"model": Error, "description": "No such blob"},
    },
)
async def download_blob(
    digest: str, blobs: BlobsDep, if_none_match: Annotated[str | None, Header()] = None
) -> Response:
    reader, small = await anyio.to_thread.run_sync(_open, blobs, digest)
    headers = {"ETag": f'"{reader.digest}"', "Cache-Control": "public, max-age=31536000, immutable"}
    if if_none_match is not None and reader.digest in if_none_match:
        reader.close()
        return Response(status_code=304, headers=headers)
    if small is not None:  # specs and results are mostly small: one read, no streaming machinery
        return Response(small, media_type="application/octet-stream", headers=headers)
    headers["Content-Length"] = str(reader.size)
    return StreamingResponse(reader.chunks(), media_type="application/octet-stream", headers=headers)


def _open(blobs: BlobStore, digest: str) -> tuple[BlobReader, bytes | None]:
    """The blob, and its bytes when it fits in one read."""
    reader = blobs.open(digest)
    if reader.size > SMALL_BLOB:
        return reader, None
    with reader:
        return reader, reader.read()


def _refuse_declared_over(request: Request, limit: int) -> None:
    """413 for a body that says it is larger than `limit`, before a byte of it is read."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BlobTooLarge(limit)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past `limit` bytes, declared or sent."""
    _refuse_declared_over(request, limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BlobTooLarge(limit)
    return bytes(body)


def _batch_limit(settings: ApiSettings) -> int:
    return settings.max_blob_bytes * 4 // 3 + 64 * 1024  # base64, and the JSON around it


@router.post(
    "/batch",
    summary="Store several small blobs in one request",
    responses={
        422: {"model": Error, "description": "Not a batch of 1 to 256 base64 blobs"},
        413: {"model": Error, "description": "The batch is larger than the service's blob limit"},
    },
)
async def upload_blobs(request: Request, blobs: BlobsDep, settings: SettingsDep) -> StoredBlobs:
    """The whole batch is at most the service's blob limit; each blob is stored as `PUT` would
    store it (atomically, under its SHA-256), and the answer lists them in the order sent."""
    body = await _read_limited(request, _batch_limit(settings))
    try:
        batch = BlobBatch.model_validate_json(body)
    except ValidationError as exc:  # answered like FastAPI's own body validation (422)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    if sum(len(data) for data in batch.blobs) > settings.max_blob_bytes:
        raise BlobTooLarge(settings.max_blob_bytes)

    def store() -> list[Blob]:
        stored = [blobs.put([data]) for data in batch.blobs]
        return [Blob(digest=info.digest, cid=info.cid, size=info.size) for info in stored]

    return StoredBlobs(blobs=await anyio.to_thread.run_sync(store))


@router.post(
    "/query",
    summary="Fetch several small blobs in one request, by digest",
    responses={400: {"model": Error, "description": "A digest that is not one"}},
)
async def download_blobs(query: BlobQuery, blobs: BlobsDep) -> FoundBlobs:
    """Blobs up to 64 KiB each come back inline, base64, up to 8 MiB in all; larger ones, and
    those past the total, are listed in `deferred` (fetch them with `GET /v1/blobs/{digest}`)."""
    try:
        digests = list(dict.fromkeys(normalize_digest(digest) for digest in query.digests))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None

    def read() -> FoundBlobs:
        found: dict[str, str] = {}
        missing, deferred = [], []
        total = 0
        for digest in digests:
            try:
                reader = blobs.open(digest)
            except BlobNotFound:
                missing.append(digest)
                continue
            with reader:
                if reader.size > SMALL_BLOB or total + reader.size > QUERY_ANSWER_BYTES:
                    deferred.append(digest)
                    continue
                found[digest] = base64.b64encode(reader.read()).decode()
                total += reader.size
        return FoundBlobs(blobs=found, missing=missing, deferred=deferred)

    return await anyio.to_thread.run_sync(read)
