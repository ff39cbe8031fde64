"""The state database: SQLite under the state directory, shared by every part of the daemon.

Resources are JSON documents keyed by (kind, id), in creation order. One lock serialises the
daemon's threads; every write is committed before the API answers, so a killed daemon loses
nothing it has acknowledged.

Each kind of record has one owner: the module that defines its `Kind` (e.g. `instances.INSTANCE`).
Other modules read and write the records through that module, never by the kind's name.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (kind, id)
);
CREATE TABLE IF NOT EXISTS kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    nonce   TEXT PRIMARY KEY,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS nonces_expires ON nonces (expires);
"""

Doc = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One kind of record: its name in the store and the field of a record that holds its id."""

    name: str
    id_field: str

    def find(self, store: Store, id_: str) -> Doc | None:
        """The record `id_`, or None."""
        return store.get(self.name, id_)

    def all(self, store: Store, where: Callable[[Doc], bool] | None = None) -> list[Doc]:
        """Every record (those for which `where` is true), in creation order."""
        return store.list(self.name, where)

    def save(self, store: Store, record: Doc) -> Doc:
        """Create or replace `record` under its id."""
        return store.put(self.name, record[self.id_field], record)

    def update(self, store: Store, id_: str, **fields: Any) -> Doc:
        """Change some fields of an existing record; KeyError when there is none."""
        return store.update(self.name, id_, **fields)

    def delete(self, store: Store, id_: str) -> bool:
        """Remove the record `id_`; False when there was none."""
        return store.delete(self.name, id_)


def private_dir(path: Path | str) -> Path:
    """Create `path` (and its parents) and make it owner-only (0700), as the state it holds is secret."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def open_private_db(path: Path | str) -> sqlite3.Connection:
    """A SQLite database in WAL mode whose files (the database, its -wal and -shm) are owner-only (0600):
    they hold the account's AccessKey secrets. SQLite gives the -wal and -shm files the database's mode."""
    path = str(path)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    for name in (path, f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(name, 0o600)  # a database made before they were private
    return conn


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._conn = open_private_db(self.path)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """All reads and writes inside are atomic and isolated from the daemon's other threads."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._conn.execute("COMMIT")

    # -- documents -------------------------------------------------------------------------
    def get(self, kind: str, id_: str) -> Doc | None:
        with self._lock:
            row = self._conn.execute("SELECT data FROM resources WHERE kind=? AND id=?", (kind, id_)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, kind: str, id_: str, data: Doc) -> Doc:
        with self._lock:
            self._conn.execute(
                "INSERT INTO resources (kind, id, data) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, id) DO UPDATE SET data = excluded.data",
                (kind, id_, json.dumps(data, sort_keys=True)),
            )
        return data

    def delete(self, kind: str, id_: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM resources WHERE kind=? AND id=?", (kind, id_))
        return cur.rowcount > 0

    def list(self, kind: str, where: Callable[[Doc], bool] | None = None) -> list[Doc]:
        with self._lock:
            rows = self._conn.execute("SELECT data FROM resources WHERE kind=? ORDER BY seq", (kind,)).fetchall()
        docs = [json.loads(r[0]) for r in rows]
        return [d for d in docs if where(d)] if where else docs

    def update(self, kind: str, id_: str, **fields: Any) -> Doc:
        with self.transaction():
            doc = self.get(kind, id_)
            if doc is None:
                raise KeyError(f"{kind} {id_} does not exist")
            doc.update(fields)
            return self.put(kind, id_, doc)

    # -- small values ----------------------------------------------------------------------
    def kv_get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def kv_put(self, key: str, value: Any) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    # -- signature nonces --------------------------------------------------------------------
    def use_nonce(self, nonce: str, now: float, ttl: float) -> bool:
        """Record a nonce; False when it was already used within its lifetime."""
        with self._lock:
            self._conn.execute("DELETE FROM nonces WHERE expires < ?", (now,))
            try:
                self._conn.execute("INSERT INTO nonces (nonce, expires) VALUES (?, ?)", (nonce, now + ttl))
            except sqlite3.IntegrityError:
                return False
        return True
