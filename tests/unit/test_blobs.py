"""The blob store: digests, streamed atomic writes, limits, mismatches, concurrency, and the interface."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.protocol.hashing import cid_v1
from marketplace.store.blobs import (
    BlobInfo,
    BlobNotFound,
    BlobReader,
    BlobStore,
    BlobTooLarge,
    BlobWriter,
    DigestMismatch,
    FilesystemBlobStore,
    InvalidDigest,
    normalize_digest,
)

HELLO = b"hello"
HELLO_DIGEST = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_files(root: Path) -> list[Path]:
    """Every file in the store, finished or partial."""
    return sorted(path for path in root.rglob("*") if path.is_file())


@pytest.fixture
def store(tmp_path: Path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs")


class Boom(Exception):
    pass


def failing_chunks(good_chunks: int, size: int = 1000) -> Iterator[bytes]:
    for _ in range(good_chunks):
        yield b"x" * size
    raise Boom("the client went away")


# ── digests ──


@pytest.mark.parametrize(
    "text", [HELLO_DIGEST, HELLO_DIGEST.upper(), "0x" + HELLO_DIGEST, "0X" + HELLO_DIGEST]
)
def test_normalize_digest_accepts_hex_in_any_case_with_or_without_0x(text: str) -> None:
    assert normalize_digest(text) == HELLO_DIGEST


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "64 hex characters, 'abc' has 3"),
        (HELLO_DIGEST + "0", "has 65"),
        ("", "has 0"),
        ("g" * 64, "contains 'g'"),
        ("0x" + "z" + HELLO_DIGEST[1:], "contains 'z'"),
        ("../../" + HELLO_DIGEST[6:], "contains '.'"),
    ],
)
def test_normalize_digest_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidDigest, match=message):
        normalize_digest(text)


# ── writing and reading ──


def test_round_trip_in_a_sharded_layout(store: FilesystemBlobStore) -> None:
    info = store.put([b"hel", b"", b"lo"])
    assert info == BlobInfo(HELLO_DIGEST, 5, created=True)
    assert info.cid == cid_v1(bytes.fromhex(HELLO_DIGEST))
    assert store.root / "2c" / "f2" / HELLO_DIGEST in stored_files(store.root)
    assert store.get("0x" + HELLO_DIGEST.upper()) == HELLO
    with store.open(HELLO_DIGEST) as reader:
        assert reader.size == 5
        assert list(reader.chunks(2)) == [b"he", b"ll", b"o"]
    assert store.partial_uploads() == []


def test_empty_blob(store: FilesystemBlobStore) -> None:
    info = store.put([])
    assert info.digest == digest_of(b"") and info.size == 0
    assert store.get(info.digest) == b""


def test_storing_a_blob_again_reports_it_existed(store: FilesystemBlobStore) -> None:
    assert store.put([HELLO]).created
    again = store.put([HELLO], expected=HELLO_DIGEST)
    assert again == BlobInfo(HELLO_DIGEST, 5, created=False)
    assert len(stored_files(store.root)) == 1


def test_missing_blob(store: FilesystemBlobStore) -> None:
    with pytest.raises(BlobNotFound, match=f"no blob {HELLO_DIGEST}"):
        store.open(HELLO_DIGEST)
    assert not store.exists(HELLO_DIGEST)
    with pytest.raises(InvalidDigest):
        store.open("../etc/passwd")


def test_expected_digest_is_checked(store: FilesystemBlobStore) -> None:
    wrong = digest_of(b"something else")
    with pytest.raises(DigestMismatch) as caught:
        store.put([HELLO], expected="0x" + wrong.upper())
    assert (caught.value.expected, caught.value.actual) == (wrong, HELLO_DIGEST)
    assert wrong in str(caught.value) and HELLO_DIGEST in str(caught.value)
    assert stored_files(store.root) == []


def test_size_limit_is_exact_and_leaves_nothing(store: FilesystemBlobStore) -> None:
    assert store.put([b"x" * 10], max_bytes=10).size == 10
    with pytest.raises(BlobTooLarge, match="limit of 10 bytes"):
        store.put([b"y" * 6, b"y" * 5], max_bytes=10)
    assert stored_files(store.root) == [store.path_of(digest_of(b"x" * 10))]


def test_an_upload_failing_midway_leaves_nothing(store: FilesystemBlobStore) -> None:
    with pytest.raises(Boom):
        store.put(failing_chunks(50))
    assert stored_files(store.root) == []


def test_a_half_written_blob_is_never_visible(store: FilesystemBlobStore) -> None:
    data = b"z" * 5000
    with store.writer() as writer:
        writer.write(data[:2500])
        assert store.partial_uploads()  # the bytes are on disk, in the partial area
        assert not store.exists(digest_of(data))
        writer.write(data[2500:])
        assert not store.exists(digest_of(data))
        writer.commit()
    assert store.get(digest_of(data)) == data
    assert store.partial_uploads() == []


def test_leaving_a_writer_without_commit_discards_it(store: FilesystemBlobStore) -> None:
    with store.writer() as writer:
        writer.write(HELLO)
    assert stored_files(store.root) == []


def test_concurrent_uploads_of_the_same_blob(store: FilesystemBlobStore) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    results: list[BlobInfo] = []
    barrier = threading.Barrier(8)

    def upload() -> None:
        barrier.wait()
        results.append(store.put(data[i : i + 65536] for i in range(0, len(data), 65536)))

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {(info.digest, info.size) for info in results} == {(digest_of(data), len(data))}
    assert stored_files(store.root) == [store.path_of(digest_of(data))]
    assert store.get(digest_of(data)) == data


def test_stale_partial_uploads_are_removed_at_start(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    (store.partial_dir / "upload-crashed").write_bytes(b"half")
    assert FilesystemBlobStore(tmp_path, stale_partial_seconds=3600).partial_uploads() != []
    assert FilesystemBlobStore(tmp_path, stale_partial_seconds=-1).partial_uploads() == []


@settings(max_examples=50, deadline=None)
@given(chunks=st.lists(st.binary(max_size=300), max_size=8))
def test_any_chunking_stores_the_concatenation(
    tmp_path_factory: pytest.TempPathFactory, chunks: list[bytes]
) -> None:
    store = FilesystemBlobStore(tmp_path_factory.mktemp("blobs"))
    data = b"".join(chunks)
    info = store.put(chunks, expected=digest_of(data))
    assert (info.digest, info.size) == (digest_of(data), len(data))
    assert store.get(info.digest) == data


# ── async uploads ──


async def agen(chunks: Iterable[bytes], consumed: list[int] | None = None) -> AsyncIterator[bytes]:
    for chunk in chunks:
        if consumed is not None:
            consumed.append(len(chunk))
        yield chunk


def test_put_async_round_trip(store: FilesystemBlobStore) -> None:
    data = b"a" * (3 * 1024 * 1024 + 7)  # more than one write batch

    async def main() -> BlobInfo:
        return await store.put_async(agen(data[i : i + 100_000] for i in range(0, len(data), 100_000)))

    info = anyio.run(main)
    assert (info.digest, info.size) == (digest_of(data), len(data))
    assert store.get(info.digest) == data


def test_put_async_stops_reading_once_over_the_limit(store: FilesystemBlobStore) -> None:
    consumed: list[int] = []

    async def main() -> None:
        await store.put_async(agen((b"x" * 1000 for _ in range(1000)), consumed), max_bytes=10_500)

    with pytest.raises(BlobTooLarge):
        anyio.run(main)
    assert len(consumed) == 11  # the chunk that crossed the limit was the last one read
    assert stored_files(store.root) == []


def test_put_async_failing_midway_leaves_nothing(store: FilesystemBlobStore) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in failing_chunks(3000):  # past one write batch, so part is on disk
            yield chunk

    async def main() -> None:
        await store.put_async(chunks())

    with pytest.raises(Boom):
        anyio.run(main)
    assert stored_files(store.root) == []


def test_put_async_checks_the_digest(store: FilesystemBlobStore) -> None:
    async def main() -> None:
        await store.put_async(agen([HELLO]), expected=digest_of(b"other"))

    with pytest.raises(DigestMismatch):
        anyio.run(main)
    assert stored_files(store.root) == []


# ── the interface admits other stores ──


class MemoryBlobStore(BlobStore):
    """A minimal second implementation: the base class supplies hashing, limits and checks."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def writer(self, *, max_bytes: int | None = None) -> BlobWriter:
        store = self

        class Writer(BlobWriter):
            def __init__(self) -> None:
                super().__init__(max_bytes)
                self.parts: list[bytes] = []

            def _write(self, chunk: bytes) -> None:
                self.parts.append(chunk)

            def _publish(self, digest: str) -> bool:
                created = digest not in store.blobs
                store.blobs[digest] = b"".join(self.parts)
                return created

            def _discard(self) -> None:
                self.parts.clear()

        return Writer()

    def open(self, digest: str) -> BlobReader:
        digest = normalize_digest(digest)
        if digest not in self.blobs:
            raise BlobNotFound(digest)
        data = self.blobs[digest]

        class Reader(BlobReader):
            def chunks(self, chunk_size: int = 4) -> Iterator[bytes]:
                yield from (data[i : i + chunk_size] for i in range(0, len(data), chunk_size))

            def close(self) -> None:
                pass

        return Reader(digest, len(data))

    def exists(self, digest: str) -> bool:
        return normalize_digest(digest) in self.blobs


def test_another_store_gets_the_same_guarantees() -> None:
    store = MemoryBlobStore()
    assert store.put([HELLO]).digest == HELLO_DIGEST
    assert store.get(HELLO_DIGEST) == HELLO
    with pytest.raises(BlobTooLarge):
        store.put([b"x" * 11], max_bytes=10)
    with pytest.raises(DigestMismatch):
        store.put([b"y"], expected=HELLO_DIGEST)
    assert list(store.blobs) == [HELLO_DIGEST]
