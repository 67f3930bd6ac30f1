"""A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temporary directory, always removed.

The server listens on a free loopback port with trust authentication, keeps its socket in its own
directory and runs with fsync off (nothing in it outlives the test session). PostgreSQL refuses to
run as root, so under root every server command runs as the `postgres` user through `runuser`,
and the directory is handed to that user. The server is stopped and its directory deleted by
`stop()`, on interpreter exit, or when the object is garbage collected, whichever comes first.
"""

from __future__ import annotations

import atexit
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import weakref
from pathlib import Path
from types import TracebackType

from marketplace.chain.devnet import free_port

PG_BIN = Path(os.environ.get("CMARKET_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here, or they cannot be run: PostgreSQL tests are skipped."""


def _run_as_prefix() -> list[str]:
    """How to run a server command: directly, or as `postgres` through runuser when we are root."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        raise PostgresUnavailable("running as root and `runuser` is missing: cannot start PostgreSQL")
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"running as root and there is no `{SERVER_USER}` user to run PostgreSQL as"
        ) from None
    return ["runuser", "-u", SERVER_USER, "--"]


def unavailable_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when they can."""
    missing = [name for name in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / name).is_file()]
    if missing:
        return f"PostgreSQL server binaries not found in {PG_BIN} (missing {', '.join(missing)})"
    try:
        _run_as_prefix()
    except PostgresUnavailable as exc:
        return str(exc)
    return None


def _stop_and_remove(prefix: list[str], data: Path, root: Path) -> None:
    if (data / "postmaster.pid").exists():
        subprocess.run(
            [*prefix, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


class PostgresServer:
    """One server; `database()` creates a fresh, empty database on it and returns its SQLAlchemy URL."""

    def __init__(self) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise PostgresUnavailable(reason)
        self._prefix = _run_as_prefix()
        self.root = Path(tempfile.mkdtemp(prefix="cmarket-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port: int | None = None
        self._names = itertools.count(1)
        self._finalizer = weakref.finalize(self, _stop_and_remove, self._prefix, self.data, self.root)
        atexit.register(self._finalizer)

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._prefix, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgresUnavailable(
                f"{Path(args[0]).name} failed ({done.returncode}): {done.stdout}{done.stderr}\n{log}"
            )

    def start(self) -> PostgresServer:
        if self._prefix:
            shutil.chown(self.root, user=SERVER_USER)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync", "--no-instructions")  # fmt: skip
        for attempt in range(3):
            self.port = free_port()
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
            )
            try:
                self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                          "-t", "60", "-o", options, "start")  # fmt: skip
                return self
            except PostgresUnavailable:
                if attempt == 2:  # the port was taken between choosing and binding it: try another
                    raise
        raise AssertionError("unreachable")

    def url(self, database: str = "postgres") -> str:
        assert self.port is not None, "server not started"
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def database(self, prefix: str = "test") -> str:
        """CREATE DATABASE with a new name; returns its URL."""
        import psycopg

        name = f"{prefix}_{next(self._names)}"
        assert self.port is not None, "server not started"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as connection:  # fmt: skip
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stops the server and deletes its directory (safe to call more than once)."""
        self._finalizer()
        atexit.unregister(self._finalizer)

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
