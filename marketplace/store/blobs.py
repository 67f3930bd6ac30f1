"""The blob store: content-addressed bytes (specs, inputs, modules, results) keyed by their SHA-256.

A blob becomes visible only once it is complete and verified: a writer hashes and counts the bytes
as they stream in, and `commit` publishes them atomically under their digest (on the filesystem:
temp file in the store root, fsync, `os.replace`). An upload that is too large, does not match its
announced digest, or is abandoned midway leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

import anyio.to_thread

from ..protocol.errors import MarketError
from ..protocol.hashing import cid_v1

_NOT_HEX = re.compile(r"[^0-9a-fA-F]")

READ_CHUNK = 256 * 1024
WRITE_BATCH = 1024 * 1024  # async uploads buffer this much before one write in a worker thread


class BlobError(MarketError):
    """Root of the blob store's errors."""


class InvalidDigest(BlobError, ValueError):
    """A string that is not a SHA-256 digest (64 hex characters, optionally 0x-prefixed)."""


class BlobNotFound(BlobError, LookupError):
    def __init__(self, digest: str) -> None:
        super().__init__(f"no blob {digest}")
        self.digest = digest


class BlobTooLarge(BlobError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"blob larger than the limit of {limit} bytes")
        self.limit = limit


class DigestMismatch(BlobError):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"the body hashes to sha256 {actual}, not the announced {expected}")
        self.expected = expected
        self.actual = actual


def normalize_digest(text: str) -> str:
    """The canonical form of a SHA-256 digest: 64 lowercase hex characters, without 0x."""
    bare = text[2:] if text[:2] in ("0x", "0X") else text
    if len(bare) != 64:
        raise InvalidDigest(f"a SHA-256 digest has 64 hex characters, {text!r} has {len(bare)}")
    bad = _NOT_HEX.search(bare)
    if bad is not None:
        raise InvalidDigest(f"a SHA-256 digest is hex, {text!r} contains {bad.group()!r}")
    return bare.lower()


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int
    created: bool = True  # False when the store already held this blob

    @property
    def cid(self) -> str:
        return cid_v1(bytes.fromhex(self.digest))


class BlobWriter(ABC):
    """One upload in progress. Nothing is visible until `commit`; leaving the `with` block without
    committing (an exception, a disconnect) discards everything written."""

    def __init__(self, max_bytes: int | None) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        self._finished = False

    def check_size(self, size: int) -> None:
        """Raises BlobTooLarge (and discards the upload) once `size` bytes exceed the limit."""
        if self.max_bytes is not None and size > self.max_bytes:
            self.abort()
            raise BlobTooLarge(self.max_bytes)

    def write(self, chunk: bytes) -> None:
        if self._finished:
            raise BlobError("write to a finished upload")
        self.check_size(self.size + len(chunk))
        self.size += len(chunk)
        self._hash.update(chunk)
        self._write(chunk)

    def commit(self, expected: str | None = None) -> BlobInfo:
        """Publishes the blob under its digest; with `expected`, only if the bytes hash to it."""
        if self._finished:
            raise BlobError("commit of a finished upload")
        digest = self._hash.hexdigest()
        if expected is not None and normalize_digest(expected) != digest:
            self.abort()
            raise DigestMismatch(normalize_digest(expected), digest)
        self._finished = True
        try:
            created = self._publish(digest)
        except BaseException:
            self._discard()
            raise
        return BlobInfo(digest, self.size, created)

    def abort(self) -> None:
        if not self._finished:
            self._finished = True
            self._discard()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abort()

    @abstractmethod
    def _write(self, chunk: bytes) -> None: ...

    @abstractmethod
    def _publish(self, digest: str) -> bool:
        """Makes the written bytes the blob `digest`; False if the store already had it."""

    @abstractmethod
    def _discard(self) -> None: ...


class BlobReader(ABC):
    """An open blob: its size, then its bytes in chunks (closed when fully read or on `close`)."""

    def __init__(self, digest: str, size: int) -> None:
        self.digest = digest
        self.size = size

    @abstractmethod
    def chunks(self, chunk_size: int = READ_CHUNK) -> Iterator[bytes]: ...

    @abstractmethod
    def close(self) -> None: ...

    def read(self) -> bytes:
        """All of it (for small blobs and tests; servers stream `chunks`)."""
        return b"".join(self.chunks())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class BlobStore(ABC):
    """Content-addressed storage. Implementations provide `writer`, `open` and `exists`."""

    @abstractmethod
    def writer(self, *, max_bytes: int | None = None) -> BlobWriter:
        """Starts an upload of at most `max_bytes` bytes."""

    @abstractmethod
    def open(self, digest: str) -> BlobReader:
        """The blob `digest` (any accepted form); raises BlobNotFound or InvalidDigest."""

    @abstractmethod
    def exists(self, digest: str) -> bool: ...

    def put(
        self, chunks: Iterable[bytes], *, max_bytes: int | None = None, expected: str | None = None
    ) -> BlobInfo:
        """Stores a stream of chunks; raises BlobTooLarge or DigestMismatch, storing nothing."""
        if expected is not None:
            expected = normalize_digest(expected)
        with self.writer(max_bytes=max_bytes) as writer:
            for chunk in chunks:
                writer.write(chunk)
            return writer.commit(expected)

    async def put_async(
        self, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None, expected: str | None = None
    ) -> BlobInfo:
        """`put` for an async stream (an HTTP request body): stops reading as soon as the limit is
        passed; disk writes, hashing and the final fsync run in worker threads."""
        if expected is not None:
            expected = normalize_digest(expected)
        with self.writer(max_bytes=max_bytes) as writer:
            buffer = bytearray()
            async for chunk in chunks:
                writer.check_size(writer.size + len(buffer) + len(chunk))
                buffer += chunk
                if len(buffer) >= WRITE_BATCH:
                    await anyio.to_thread.run_sync(writer.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await anyio.to_thread.run_sync(writer.write, bytes(buffer))
            return await anyio.to_thread.run_sync(writer.commit, expected)

    def get(self, digest: str) -> bytes:
        with self.open(digest) as reader:
            return reader.read()


class _FileWriter(BlobWriter):
    def __init__(self, store: FilesystemBlobStore, max_bytes: int | None) -> None:
        super().__init__(max_bytes)
        self._store = store
        fd, name = tempfile.mkstemp(dir=store.partial_dir, prefix="upload-")
        self._path = Path(name)
        self._file: BinaryIO = os.fdopen(fd, "wb")

    def _write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def _publish(self, digest: str) -> bool:
        final = self._store.path_of(digest)
        if final.exists():  # content-addressed: the stored bytes are these bytes
            self._discard()
            return False
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        final.parent.mkdir(parents=True, exist_ok=True)
        self._path.replace(final)  # os.replace: atomic: readers see no file or the whole file
        _fsync_directory(final.parent)
        return True

    def _discard(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class _FileReader(BlobReader):
    def __init__(self, digest: str, file: BinaryIO) -> None:
        super().__init__(digest, os.fstat(file.fileno()).st_size)
        self._file = file

    def chunks(self, chunk_size: int = READ_CHUNK) -> Iterator[bytes]:
        try:
            while chunk := self._file.read(chunk_size):
                yield chunk
        finally:
            self._file.close()

    def close(self) -> None:
        self._file.close()


def _fsync_directory(path: Path) -> None:
    """Makes a rename in `path` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class FilesystemBlobStore(BlobStore):
    """Blobs as files `root/ab/cd/<digest>`; uploads in progress live in `root/.partial/`, on the same
    filesystem, so publishing one is a single atomic rename."""

    def __init__(self, root: Path | str, *, stale_partial_seconds: float = 24 * 3600) -> None:
        self.root = Path(root)
        self.partial_dir = self.root / ".partial"
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        self.remove_stale_partials(stale_partial_seconds)

    def path_of(self, digest: str) -> Path:
        digest = normalize_digest(digest)
        return self.root / digest[:2] / digest[2:4] / digest

    def writer(self, *, max_bytes: int | None = None) -> BlobWriter:
        return _FileWriter(self, max_bytes)

    def open(self, digest: str) -> BlobReader:
        digest = normalize_digest(digest)
        try:
            file = self.path_of(digest).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(digest) from None
        return _FileReader(digest, file)

    def exists(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    def partial_uploads(self) -> list[Path]:
        return sorted(self.partial_dir.iterdir())

    def remove_stale_partials(self, older_than: float) -> int:
        """Deletes uploads a crashed process left behind; returns how many."""
        cutoff = time.time() - older_than
        removed = 0
        for path in self.partial_dir.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed
