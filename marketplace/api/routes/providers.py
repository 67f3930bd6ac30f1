"""`GET /v1/providers` (cursor paging by address) and `GET /v1/providers/{address}`."""

from __future__ import annotations

from fastapi import APIRouter, Response

from .. import queries
from ..deps import CachedReadsDep, DatabaseDep
from ..params import AddressPath, Cursor, Limit, decode_provider_cursor, encode_cursor
from ..responses import JsonBytes
from ..schemas import Error, ProviderDetail, ProviderPage

router = APIRouter(prefix="/v1/providers", tags=["providers"])


@router.get("", summary="Providers by address, with stakes and earnings", responses={400: {"model": Error}})
async def list_providers(db: DatabaseDep, limit: Limit = 50, cursor: Cursor = None) -> ProviderPage:
    after = decode_provider_cursor(cursor) if cursor is not None else None
    providers, more = await db.run(queries.provider_page, limit=limit, after=after)
    next_cursor = encode_cursor("providers", providers[-1].address) if more else None
    return ProviderPage(providers=providers, next_cursor=next_cursor)


@router.get(
    "/{address}",
    summary="One provider, with the slashes it suffered",
    response_model=ProviderDetail,
    responses={404: {"model": Error}},
)
async def get_provider(reads: CachedReadsDep, address: AddressPath) -> Response:
    body = await reads.json(
        ("provider", address), lambda connection: queries.provider_detail(connection, address)
    )
    return JsonBytes(body)
