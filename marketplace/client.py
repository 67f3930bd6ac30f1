"""The requester's client: upload a spec and its inputs, post the job, follow it, fetch and verify the result.

Reads of job state come from the marketplace API; what a requester must be able to trust (the
result hash it pays for) is read from the chain itself and checked against the downloaded bytes.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from eth_utils import to_checksum_address

from .api.schemas import BLOB_BATCH_ITEMS
from .chain.market import MarketActor, TxResult
from .protocol.errors import MarketError
from .protocol.hashing import sha256
from .protocol.spec import parse_spec
from .protocol.status import TERMINAL_JOB_STATUSES
from .protocol.views import ETH, JobParams

BATCH_BYTES = 4 * 1024 * 1024


class ClientError(MarketError):
    """The marketplace API refused a request or answered something unusable."""


class ResultUnavailable(ClientError):
    """The job has no verified result (yet, or ever)."""


class DigestMismatch(ClientError):
    """Downloaded bytes do not hash to the digest they were fetched by."""


@dataclass(frozen=True)
class BlobRef:
    digest: str  # 64 lowercase hex characters
    cid: str
    size: int


def digest_hex(data: bytes) -> str:
    return sha256(data).hex()


class MarketplaceApi:
    """HTTP access to a marketplace service (`cmarket market serve`)."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach the marketplace at {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ClientError(f"{method} {path}: {response.status_code} {detail}")
        return response

    def health(self) -> dict[str, Any]:
        return dict(self._request("GET", "/health").json())

    def job(self, job_id: int) -> dict[str, Any]:
        return dict(self._request("GET", f"/v1/jobs/{job_id}").json())

    def jobs(self, **params: Any) -> dict[str, Any]:
        """One page of `GET /v1/jobs` (filters, `limit`, `cursor`)."""
        return dict(self._request("GET", "/v1/jobs", params=params).json())

    def provider(self, address: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/v1/providers/{address}").json())

    def providers(self, limit: int = 200) -> list[dict[str, Any]]:
        """The first `limit` registered providers, by address."""
        return list(self._request("GET", "/v1/providers", params={"limit": limit}).json()["providers"])

    def wait(
        self,
        job_id: int,
        *,
        timeout: float = 600.0,
        poll_interval: float = 0.5,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Polls the marketplace until the job is completed, failed or cancelled."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while True:
            try:
                job = self.job(job_id)
            except ClientError:
                job = None  # not indexed yet, or the service is restarting
            if job is not None:
                if on_update is not None and job != last:
                    on_update(job)
                last = job
                if job["status"] in TERMINAL_JOB_STATUSES:
                    return job
            if time.monotonic() >= deadline:
                status = last["status"] if last else "not yet indexed"
                raise ClientError(f"job {job_id} still {status} after {timeout:.0f}s")
            time.sleep(poll_interval)

    def upload(self, data: bytes) -> BlobRef:
        expected = digest_hex(data)
        reply = self._request("PUT", "/v1/blobs", params={"sha256": expected}, content=data).json()
        return _stored(reply, expected)

    def upload_many(self, blobs: Sequence[bytes]) -> list[BlobRef]:
        """`upload` for many small blobs, a batch request at a time; refs in the order given."""
        refs: list[BlobRef] = []
        for batch in _batches(blobs):
            body = {"blobs": [base64.b64encode(data).decode() for data in batch]}
            stored = self._request("POST", "/v1/blobs/batch", json=body).json()["blobs"]
            refs += [_stored(reply, digest_hex(data)) for data, reply in zip(batch, stored, strict=True)]
        return refs

    def download_many(self, digests: Sequence[str]) -> dict[str, bytes]:
        """The blobs with these digests that the marketplace holds, verified, fetched a batch at a
        time (large ones one by one); a digest it does not hold is left out."""
        wanted = list(dict.fromkeys(digest.removeprefix("0x").lower() for digest in digests))
        found: dict[str, bytes] = {}
        for start in range(0, len(wanted), BLOB_BATCH_ITEMS):
            chunk = wanted[start : start + BLOB_BATCH_ITEMS]
            reply = self._request("POST", "/v1/blobs/query", json={"digests": chunk}).json()
            for digest, encoded in reply["blobs"].items():
                found[digest] = _verified(digest, base64.b64decode(encoded))
            for digest in reply["deferred"]:
                found[digest] = self.download(digest)
        return found

    def download(self, digest: str) -> bytes:
        """The blob with this digest, verified: raises DigestMismatch if the bytes are not it."""
        digest = digest.removeprefix("0x").lower()
        return _verified(digest, self._request("GET", f"/v1/blobs/{digest}").content)


def _stored(reply: dict[str, Any], expected: str) -> BlobRef:
    """The reference to a blob the marketplace says it stored, checked against its own digest."""
    if reply["digest"] != expected:
        raise DigestMismatch(f"the marketplace stored {reply['digest']} for a blob hashing to {expected}")
    return BlobRef(reply["digest"], reply["cid"], int(reply["size"]))


def _verified(digest: str, data: bytes) -> bytes:
    """`data`, if it is the blob `digest` names; DigestMismatch otherwise."""
    actual = digest_hex(data)
    if actual != digest:
        raise DigestMismatch(f"blob {digest} downloaded as bytes hashing to {actual}")
    return data


def _batches(blobs: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
    """Runs of at most BLOB_BATCH_ITEMS blobs and about BATCH_BYTES bytes (one blob may exceed it)."""
    start, size = 0, 0
    for index, data in enumerate(blobs):
        if index > start and (index - start == BLOB_BATCH_ITEMS or size + len(data) > BATCH_BYTES):
            yield blobs[start:index]
            start, size = index, 0
        size += len(data)
    if start < len(blobs):
        yield blobs[start:]


@dataclass(frozen=True)
class SubmittedJob:
    job_id: int
    spec: BlobRef
    inputs: list[BlobRef]
    transaction: TxResult


class Requester:
    """A requester: posts jobs from one account and fetches their verified results."""

    def __init__(self, api: MarketplaceApi, actor: MarketActor) -> None:
        self.api = api
        self.actor = actor
        self.market = actor.market

    def submit(
        self,
        spec: dict[str, Any],
        inputs: Sequence[bytes] = (),
        *,
        reward_per_replica: int,
        replicas: int = 1,
        token: str = ETH,
        collateral_per_replica: int | None = None,
        claim_window: int = 3600,
        run_timeout: int = 3600,
        reveal_window: int = 3600,
    ) -> SubmittedJob:
        """Uploads the inputs and the spec (with the inputs' digests in it), then posts the job.
        A spec that is not a valid job spec raises InvalidSpec before anything is uploaded."""
        document = {**spec, "inputs": [*spec.get("inputs", []), *(sha256(data).hex() for data in inputs)]}
        spec_bytes = parse_spec(document).canonical_bytes()
        input_refs = [self.api.upload(data) for data in inputs]
        spec_ref = self.api.upload(spec_bytes)
        params = JobParams(
            spec_hash=bytes.fromhex(spec_ref.digest),
            reward_per_replica=reward_per_replica,
            replicas=replicas,
            token=to_checksum_address(token),
            collateral_per_replica=collateral_per_replica,
            claim_window=claim_window,
            run_timeout=run_timeout,
            reveal_window=reveal_window,
        )
        job_id, result = self.actor.post_job(params)
        return SubmittedJob(job_id, spec_ref, input_refs, result)

    def wait(self, job_id: int, **options: Any) -> dict[str, Any]:
        """Waits until the job is completed, failed or cancelled (see MarketplaceApi.wait)."""
        return self.api.wait(job_id, **options)

    def result_hash(self, job_id: int) -> bytes:
        """The result hash the chain settled job `job_id` with (read from its JobFinalized log)."""
        contract = self.market.contract
        logs = contract.events.JobFinalized().get_logs(argument_filters={"jobId": job_id}, from_block=0)
        if not logs:
            status = self.market.job(job_id).status
            raise ResultUnavailable(f"job {job_id} is {status}: it has no settled result")
        result_hash = bytes(logs[-1]["args"]["resultHash"])
        if not any(result_hash):
            raise ResultUnavailable(f"job {job_id} failed: no quorum agreed on a result")
        return result_hash

    def result(self, job_id: int) -> bytes:
        """The job's result bytes, verified against the result hash recorded on-chain."""
        result_hash = self.result_hash(job_id)
        return self.api.download(result_hash.hex())

    def cancel(self, job_id: int) -> TxResult:
        return self.actor.cancel(job_id)
