"""The on-disk cache of generations: SQLite in WAL mode, safe for concurrent writers.

Rows are committed batch by batch, so a run killed halfway resumes from what it had.
Keys are sha256(subject fingerprint, request key): any change to weights, tokenizer, chat
template, prompt or decoding parameters misses the cache.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import OptionError
from ..types import Output

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    text TEXT NOT NULL,
    tokens_in INTEGER,
    tokens_out INTEGER,
    latency_s REAL,
    batch_size INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
"""


def cache_key(fingerprint: str, request_key: str) -> str:
    return hashlib.sha256(f"{fingerprint}\0{request_key}".encode()).hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()

def _locked(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: Cache, *args: Any, **kwargs: Any) -> T:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class Cache:
    """Generation cache. `Cache(None)` is a disabled cache that stores nothing."""

    def __init__(self, directory: str | Path | None):
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # judge calls run on a thread pool: one statement at a time
        if directory is not None:
            directory = Path(directory)
            try:
                directory.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(directory / "cache-v2.sqlite", timeout=60, isolation_level=None,
                                           check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
            except (OSError, sqlite3.Error) as exc:
                raise OptionError(f"--ftgate-cache-dir={directory}: cannot open the cache there "
                                  f"({getattr(exc, 'strerror', None) or exc}); point it at a writable directory, "
                                  "or pass --ftgate-no-cache") from None

    @property
    def enabled(self) -> bool:
        return self._db is not None

    @_locked
    def get_many(self, keys: Sequence[str]) -> dict[str, Output]:
        if self._db is None or not keys:
            return {}
        found: dict[str, Output] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = self._db.execute(
                f"SELECT key, text, tokens_in, tokens_out, latency_s, batch_size FROM outputs "
                f"WHERE key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for key, text, t_in, t_out, latency, batch in rows:
                found[key] = Output(text, t_in, t_out, latency, cached=True, batch_size=batch)
        return found

    @_locked
    def put_many(self, fingerprint: str, items: Iterable[tuple[str, Output]]) -> None:
        if self._db is None:
            return
        now = time.time()
        rows = [(k, fingerprint, o.text, o.tokens_in, o.tokens_out, o.latency_s, o.batch_size, now) for k, o in items]
        with self._db:  # one transaction per batch
            self._db.executemany("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    @_locked
    def file_sha256(self, path: Path) -> str:
        """sha256 of a file, memoised by (path, size, mtime) so multi-GB weights hash once."""
        st = path.stat()
        key = str(path.resolve())
        if self._db is not None:
            row = self._db.execute(
                "SELECT sha256 FROM file_hashes WHERE path=? AND size=? AND mtime_ns=?",
                (key, st.st_size, st.st_mtime_ns),
            ).fetchone()
            if row:
                return row[0]
        digest = sha256_file(path)
        if self._db is not None:
            with self._db:
                self._db.execute(
                    "INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)",
                    (key, st.st_size, st.st_mtime_ns, digest),
                )
        return digest

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
