"""SQL behind the dashboard's routes: job activity over time, latency distribution, provider history, search.

Every series is in chain time: buckets end at the newest indexed block's timestamp, so a devnet
whose clock was moved forward still shows its history where it happened. Counts are grouped in
SQL; amounts (decimal strings that overflow SQL integers) are summed in Python, as in `queries.py`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    case,
    func,
    literal_column,
    or_,
    select,
)

from ..protocol.hashing import cid_v1
from ..store.blobs import BlobNotFound, BlobStore, normalize_digest
from ..store.schema import Assignment, Job, Provider, RawEvent
from . import insight_schemas as views
from .errors import BadRequest, NotFound
from .params import MAX_INT64, checksum_address
from .queries import chain_time, effective_status

JOBS = cast(Table, Job.__table__)
ASSIGNMENTS = cast(Table, Assignment.__table__)
PROVIDERS = cast(Table, Provider.__table__)
EVENTS = cast(Table, RawEvent.__table__)

_BUCKET: ColumnElement[int] = literal_column(
    "bucket"
)  # grouped by its output name: PostgreSQL then sees one expression
_SETTLED = ("won", "slashed", "returned")
SPEC_DISPLAY_LIMIT = 256 * 1024  # larger specs are offered for download, not inlined in JSON
RECENT_ASSIGNMENTS = 20


def _bucket_index(column: ColumnElement[int], start: int, width: int) -> ColumnElement[int]:
    """The bucket of `column` (-1: before `start`), labelled for GROUP BY."""
    return case((column < start, -1), else_=(column - start) // width).label("bucket")


def _counts(
    connection: Connection, column: Any, start: int, end: int, width: int, *where: Any
) -> dict[int, int]:
    index = _bucket_index(column, start, width)
    query = select(index, func.count()).where(column.is_not(None), column <= end, *where).group_by(_BUCKET)
    return {bucket: count for bucket, count in connection.execute(query)}


def _running_totals(baseline: int, per_bucket: Sequence[int]) -> list[int]:
    totals, running = [], baseline
    for count in per_bucket:
        running += count
        totals.append(running)
    return totals


# ── activity ──


def activity(connection: Connection, bucket_seconds: int, buckets: int) -> views.Activity:
    """Jobs posted, started and finished per bucket over the last `buckets` buckets up to chain time
    now, and the jobs in each state at each bucket's end: three grouped scans of the jobs table."""
    end = chain_time(connection)
    if end is None:
        return views.Activity(
            bucket_seconds=bucket_seconds, end=None, times=[], posted=[], started=[], completed=[],
            failed=[], cancelled=[], open_jobs=[], in_progress=[], completed_total=[], failed_total=[],
            cancelled_total=[],
        )  # fmt: skip
    start = end - bucket_seconds * buckets + 1  # the last bucket ends at `end`, inclusive

    def series(found: dict[int, int]) -> tuple[int, list[int]]:
        return found.get(-1, 0), [found.get(index, 0) for index in range(buckets)]

    posted_before, posted = series(_counts(connection, JOBS.c.posted_at, start, end, bucket_seconds))
    # A job settled with one submitResult may lack a start time of its own: it ran until it finished.
    started_at = func.coalesce(JOBS.c.started_at, JOBS.c.finished_at)
    started_before, started = series(
        _counts(connection, started_at, start, end, bucket_seconds, JOBS.c.status != "cancelled")
    )
    finished: dict[str, dict[int, int]] = defaultdict(dict)
    index = _bucket_index(JOBS.c.finished_at, start, bucket_seconds)
    query = (
        select(index, JOBS.c.status, func.count())
        .where(JOBS.c.finished_at.is_not(None), JOBS.c.finished_at <= end)
        .group_by(_BUCKET, JOBS.c.status)
    )
    for bucket, status, count in connection.execute(query):
        finished[status][bucket] = count
    (completed_before, completed), (failed_before, failed), (cancelled_before, cancelled) = (
        series(finished[status]) for status in ("completed", "failed", "cancelled")
    )
    posted_total = _running_totals(posted_before, posted)
    started_total = _running_totals(started_before, started)
    completed_total = _running_totals(completed_before, completed)
    failed_total = _running_totals(failed_before, failed)
    cancelled_total = _running_totals(cancelled_before, cancelled)
    return views.Activity(
        bucket_seconds=bucket_seconds,
        end=end,
        times=[start + index * bucket_seconds for index in range(buckets)],
        posted=posted,
        started=started,
        completed=completed,
        failed=failed,
        cancelled=cancelled,
        # Cancelled jobs never start; completed and failed ones all did.
        open_jobs=[p - s - c for p, s, c in zip(posted_total, started_total, cancelled_total, strict=True)],
        in_progress=[s - c - f for s, c, f in zip(started_total, completed_total, failed_total, strict=True)],
        completed_total=completed_total,
        failed_total=failed_total,
        cancelled_total=cancelled_total,
    )


# ── latency ──


def nice_width(span: float, bins: int) -> int:
    """The smallest 1, 2 or 5 × 10^k seconds that covers `span` in at most `bins` bins."""
    raw = max(span / bins, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if step * magnitude >= raw:
            return int(step * magnitude)
    raise AssertionError("unreachable: 10 × magnitude >= raw")


def latency(connection: Connection, bins: int) -> views.Latency:
    """Posted-to-finalized seconds of completed jobs: percentiles and an equal-width histogram."""
    duration = (JOBS.c.finished_at - JOBS.c.posted_at).label("duration")
    completed = JOBS.c.status == "completed"
    count, fastest, slowest = connection.execute(
        select(func.count(), func.min(duration), func.max(duration)).where(completed)
    ).one()
    if count == 0:
        return views.Latency(
            count=0, min=None, p50=None, p90=None, p99=None, max=None, bin_seconds=None, bins=[]
        )

    def at(offset: int, rows: int = 1) -> list[int]:
        query = select(duration).where(completed).order_by(duration).offset(offset).limit(rows)
        return list(connection.execute(query).scalars())

    middle = at((count - 1) // 2, 2 - count % 2)  # the median as GET /v1/stats computes it

    def nearest_rank(fraction: float) -> float:
        return float(at(max(0, math.ceil(fraction * count) - 1))[0])

    width = nice_width(slowest - fastest + 1, bins)
    first = fastest // width * width
    index = ((duration - first) // width).label("bucket")
    histogram: dict[int, int] = dict(
        connection.execute(select(index, func.count()).where(completed).group_by(_BUCKET)).all()
    )
    last = (slowest - first) // width
    return views.Latency(
        count=count,
        min=fastest,
        p50=sum(middle) / len(middle),
        p90=nearest_rank(0.9),
        p99=nearest_rank(0.99),
        max=slowest,
        bin_seconds=width,
        bins=[
            views.LatencyBin(start=first + i * width, end=first + (i + 1) * width, count=histogram.get(i, 0))
            for i in range(last + 1)
        ],
    )


# ── market summary ──


def summary(connection: Connection) -> views.Summary:
    staked = or_(PROVIDERS.c.staked != "0", PROVIDERS.c.locked != "0")
    active = connection.execute(select(func.count()).where(staked)).scalar_one()
    slashes = connection.execute(select(func.coalesce(func.sum(PROVIDERS.c.jobs_slashed), 0))).scalar_one()
    amounts = connection.execute(
        select(PROVIDERS.c.slashed_amount).where(PROVIDERS.c.slashed_amount != "0")
    ).scalars()
    requesters = connection.execute(select(func.count(func.distinct(JOBS.c.requester)))).scalar_one()
    return views.Summary(
        providers_active=active,
        slashes=int(slashes),
        slashed_amount=str(sum(int(amount) for amount in amounts)),
        requesters=requesters,
    )


# ── provider history ──


def _provider_credits(connection: Connection, address: str) -> list[tuple[int, str, int]]:
    """(time, token, amount) of every credit to `address` from the jobs it held a slot in."""
    jobs_of_provider = select(ASSIGNMENTS.c.job_id).where(ASSIGNMENTS.c.provider == address)
    rows = connection.execute(
        select(EVENTS.c.block_timestamp, EVENTS.c.args)
        .where(EVENTS.c.job_id.in_(jobs_of_provider), EVENTS.c.name == "Credited")
        .order_by(EVENTS.c.position)
    )
    credits = []
    for timestamp, args in rows:
        fields = json.loads(args) if isinstance(args, str) else args
        if fields.get("account") == address:
            credits.append((timestamp, str(fields["token"]), int(fields["amount"])))
    return credits


def provider_history(connection: Connection, address: str, buckets: int) -> views.ProviderHistory:
    """Outcomes of the provider's settled assignments and its credits, bucketed from its first
    settlement up to chain time now; and its latest assignments."""
    if connection.execute(select(PROVIDERS.c.address).where(PROVIDERS.c.address == address)).first() is None:
        raise NotFound(f"no provider {address}")
    now = chain_time(connection)
    mine = and_(ASSIGNMENTS.c.provider == address, ASSIGNMENTS.c.job_id == JOBS.c.id)
    recent = [
        views.ProviderJob(
            job_id=row.job_id,
            status=effective_status(row.status, row.commit_deadline, now),
            outcome=row.outcome,
            slashed_amount=row.slashed_amount,
            finished_at=row.finished_at,
        )
        for row in connection.execute(
            select(
                ASSIGNMENTS.c.job_id, ASSIGNMENTS.c.outcome, ASSIGNMENTS.c.slashed_amount, JOBS.c.status,
                JOBS.c.commit_deadline, JOBS.c.finished_at,
            ).where(mine).order_by(ASSIGNMENTS.c.job_id.desc()).limit(RECENT_ASSIGNMENTS)
        )
    ]  # fmt: skip
    settled = and_(mine, ASSIGNMENTS.c.outcome.in_(_SETTLED), JOBS.c.finished_at.is_not(None))
    first = connection.execute(select(func.min(JOBS.c.finished_at)).where(settled)).scalar()
    credits = _provider_credits(connection, address)
    starts = [time for time in (first, *(credit[0] for credit in credits[:1])) if time is not None]
    if not starts or now is None:
        return views.ProviderHistory(
            address=address, bucket_seconds=None, times=[], won=[], slashed=[], returned=[], reputation=[],
            earned={}, recent=recent,
        )  # fmt: skip
    start = min(starts)
    end = max(now, start)
    span = end - start + 1
    count = min(buckets, span)
    width = math.ceil(span / count)
    outcomes: dict[str, list[int]] = {outcome: [0] * count for outcome in _SETTLED}
    index = _bucket_index(JOBS.c.finished_at, start, width)
    grouped = (
        select(index, ASSIGNMENTS.c.outcome, func.count())
        .where(settled)
        .group_by(_BUCKET, ASSIGNMENTS.c.outcome)
    )
    for bucket, outcome, number in connection.execute(grouped):
        outcomes[outcome][min(max(bucket, 0), count - 1)] += number
    won_total = _running_totals(0, outcomes["won"])
    slashed_total = _running_totals(0, outcomes["slashed"])
    reputation = [
        None if won + slashed == 0 else won / (won + slashed)
        for won, slashed in zip(won_total, slashed_total, strict=True)
    ]
    per_token: dict[str, list[int]] = defaultdict(lambda: [0] * count)
    for timestamp, token, amount in credits:
        per_token[token][min(max((timestamp - start) // width, 0), count - 1)] += amount
    return views.ProviderHistory(
        address=address,
        bucket_seconds=width,
        times=[min(start + (i + 1) * width - 1, end) for i in range(count)],
        won=outcomes["won"],
        slashed=outcomes["slashed"],
        returned=outcomes["returned"],
        reputation=reputation,
        earned={
            token: [str(total) for total in _running_totals(0, amounts)]
            for token, amounts in sorted(per_token.items())
        },
        recent=recent,
    )


# ── search ──

_JOB_ID = re.compile(r"#?([0-9]{1,19})")
_DIGEST = re.compile(r"(?:0[xX])?[0-9a-fA-F]{64}")
_CID_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])  # CIDv1, raw codec, sha2-256 of 32 bytes
MAX_HITS = 50


def _digest_of_cid(text: str) -> str | None:
    """The SHA-256 a CIDv1 (raw, sha2-256, base32 'b…') names, or None if `text` is not one."""
    if not (text.startswith("b") and len(text) == 59):
        return None
    body = text[1:].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        return None
    return raw[4:].hex() if raw[:4] == _CID_PREFIX and len(raw) == 36 else None


def parse_query(text: str) -> tuple[views.QueryKind, str | int]:
    """What a search box entry names: a job id (`12` or `#12`), an address, or a SHA-256 digest
    (hex with or without 0x, or its CIDv1). Refuses anything else with a sentence saying so."""
    query = text.strip()
    if not query:
        raise BadRequest("the search query is empty: give a job id, an address or a digest")
    if (found := _JOB_ID.fullmatch(query)) is not None:
        job_id = int(found.group(1))
        if job_id > MAX_INT64:
            raise BadRequest(f"job id {query} is too large")
        return views.QueryKind.JOB_ID, job_id
    if query[:2].lower() == "0x" and len(query) == 42:
        try:
            return views.QueryKind.ADDRESS, checksum_address(query[:2].lower() + query[2:])
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
    if _DIGEST.fullmatch(query):
        return views.QueryKind.DIGEST, normalize_digest(query)
    if (digest := _digest_of_cid(query.lower())) is not None:
        return views.QueryKind.DIGEST, digest
    raise BadRequest(
        f"{query[:80]!r} is not a job id, an address (0x and 40 hex digits), "
        "a SHA-256 digest (64 hex digits) or a CID"
    )


def _job_hits(connection: Connection, where: ColumnElement[bool], match: str) -> list[views.SearchHit]:
    now = chain_time(connection)
    rows = connection.execute(
        select(JOBS.c.id, JOBS.c.status, JOBS.c.commit_deadline)
        .where(where)
        .order_by(JOBS.c.id.desc())
        .limit(MAX_HITS + 1)
    )
    return [
        views.SearchHit(
            kind=views.HitKind.JOB, match=match, job_id=row.id,
            status=effective_status(row.status, row.commit_deadline, now),
        )
        for row in rows
    ]  # fmt: skip


def search(
    connection: Connection, kind: views.QueryKind, value: str | int
) -> tuple[list[views.SearchHit], bool]:
    """Hits in the index for a parsed query (blobs are looked up by the route), and whether jobs
    were left out past MAX_HITS per kind of match."""
    hits: list[views.SearchHit] = []
    truncated = False

    def add_jobs(found: list[views.SearchHit]) -> None:
        nonlocal truncated
        truncated = truncated or len(found) > MAX_HITS
        seen = {hit.job_id for hit in hits}
        hits.extend(hit for hit in found[:MAX_HITS] if hit.job_id not in seen)

    if kind is views.QueryKind.JOB_ID:
        add_jobs(_job_hits(connection, JOBS.c.id == value, "id"))
    elif kind is views.QueryKind.ADDRESS:
        address = str(value)
        if connection.execute(select(PROVIDERS.c.address).where(PROVIDERS.c.address == address)).first():
            hits.append(views.SearchHit(kind=views.HitKind.PROVIDER, match="address", address=address))
        posted = connection.execute(select(func.count()).where(JOBS.c.requester == address)).scalar_one()
        if posted:
            hits.append(
                views.SearchHit(kind=views.HitKind.REQUESTER, match="address", address=address, jobs=posted)
            )
    else:
        hashed = "0x" + str(value)
        add_jobs(_job_hits(connection, JOBS.c.spec_hash == hashed, "spec_hash"))
        add_jobs(_job_hits(connection, JOBS.c.result_hash == hashed, "result_hash"))
        # A result some provider revealed that did not win (a dissenting or failed job's answer).
        dissent = JOBS.c.id.in_(select(ASSIGNMENTS.c.job_id).where(ASSIGNMENTS.c.result_hash == hashed))
        add_jobs(_job_hits(connection, dissent, "revealed_result"))
        # 32 bytes of hex may be a transaction hash copied from a job page, too.
        add_jobs(_job_hits(connection, JOBS.c.posted_tx == hashed, "posted_tx"))
    return hits, truncated


def blob_hit(blobs: BlobStore, digest: str) -> views.SearchHit | None:
    return (
        views.SearchHit(kind=views.HitKind.BLOB, match="blob", digest=digest)
        if blobs.exists(digest)
        else None
    )


# ── a job's data ──


def job_hashes(connection: Connection, job_id: int) -> tuple[str, str | None]:
    row = connection.execute(select(JOBS.c.spec_hash, JOBS.c.result_hash).where(JOBS.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"no job {job_id}")
    return row.spec_hash, row.result_hash


def _item(blobs: BlobStore, role: views.DataRole, digest: str) -> views.DataItem:
    size: int | None
    try:
        with blobs.open(digest) as reader:
            size = reader.size
    except BlobNotFound:
        size = None
    return views.DataItem(
        role=role, digest=digest, cid=cid_v1(bytes.fromhex(digest)), stored=size is not None, size=size,
        url=f"/v1/blobs/{digest}",
    )  # fmt: skip


def _named_digests(spec: dict[str, Any]) -> tuple[list[tuple[views.DataRole, str]], list[str]]:
    """The module and inputs a spec names, and a note for each entry that is not a digest."""
    named: list[tuple[views.DataRole, str]] = []
    problems: list[str] = []
    workload = spec.get("workload")
    candidates: list[tuple[views.DataRole, object]] = []
    if isinstance(workload, dict) and "module" in workload:
        candidates.append((views.DataRole.MODULE, workload["module"]))
    inputs = spec.get("inputs", [])
    candidates += [
        (views.DataRole.INPUT, entry) for entry in (inputs if isinstance(inputs, list) else [inputs])
    ]
    for role, entry in candidates:
        try:
            if not isinstance(entry, str):
                raise ValueError(entry)
            named.append((role, normalize_digest(entry)))
        except ValueError:
            problems.append(f"the spec's {role} {str(entry)[:80]!r} is not a SHA-256 digest")
    return named, problems


def job_data(blobs: BlobStore, job_id: int, spec_hash: str, result_hash: str | None) -> views.JobData:
    """The job's spec (parsed when stored), the module and inputs it names, and the result."""
    spec_digest = normalize_digest(spec_hash)
    items = [_item(blobs, views.DataRole.SPEC, spec_digest)]
    spec: dict[str, Any] | None = None
    note: str | None = None
    if not items[0].stored:
        note = "the spec was not uploaded to this marketplace's blob store"
    elif (items[0].size or 0) > SPEC_DISPLAY_LIMIT:
        note = f"the spec is {items[0].size:,} bytes: download it to read it"
    else:
        try:
            document = json.loads(blobs.get(spec_digest))
        except (ValueError, UnicodeDecodeError):
            document = None
        if isinstance(document, dict):
            spec = document
            named, problems = _named_digests(document)
            items += [_item(blobs, role, digest) for role, digest in named]
            note = "; ".join(problems) or None
        else:
            note = "the stored spec is not a JSON object"
    if result_hash is not None:
        items.append(_item(blobs, views.DataRole.RESULT, normalize_digest(result_hash)))
    return views.JobData(job_id=job_id, items=items, spec=spec, spec_note=note)
