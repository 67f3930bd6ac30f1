"""`PUT /v1/blobs` and `GET /v1/blobs/{digest}`: content-addressed, verified, size-limited, streamed."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from ...store.blobs import READ_CHUNK, BlobReader, BlobStore, BlobTooLarge, normalize_digest
from ..deps import BlobsDep, SettingsDep
from ..schemas import Blob, Error

router = APIRouter(prefix="/v1/blobs", tags=["blobs"])
SMALL_BLOB = READ_CHUNK

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
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > settings.max_blob_bytes:
        raise BlobTooLarge(settings.max_blob_bytes)  # refused before reading a byte
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
