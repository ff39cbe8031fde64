"""The metadata of buckets, objects and multipart uploads: SQLite under <state_dir>/oss/.

A database of its own, not the cloud's store: a checkpoint tree is thousands of objects, and
listing them needs ordered range scans on (bucket, key) that the store's JSON documents
(loaded whole per kind) cannot give; keeping OSS apart also keeps the main store small.
Keys compare as UTF-8 bytes here, which is OSS's listing order.

Writes are committed with synchronous=FULL before the API answers. Blobs a commit stops
pointing at are deleted right after it, under the same lock that readers take to look up and
open a blob, so a reader never opens a blob that was just replaced.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..store import open_private_db
from .blobs import BlobStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY, created REAL NOT NULL, acl TEXT NOT NULL, storage_class TEXT NOT NULL,
    redundancy TEXT NOT NULL, tags TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bucket_versioning (name TEXT PRIMARY KEY, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    crc64 TEXT NOT NULL, mtime REAL NOT NULL, type TEXT NOT NULL, headers TEXT NOT NULL,
    meta TEXT NOT NULL, blob TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, initiated REAL NOT NULL,
    headers TEXT NOT NULL, meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (bucket, key, upload_id);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
    crc64 TEXT NOT NULL, mtime REAL NOT NULL, blob TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) WITHOUT ROWID;
"""


# The versioning statuses a bucket can have once versioning was ever enabled (never: "").
VERSIONED = ("Enabled", "Suspended")


@dataclass
class Bucket:
    name: str
    created: float
    acl: str = "private"
    storage_class: str = "Standard"
    redundancy: str = "LRS"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class ObjectRecord:
    bucket: str
    key: str
    size: int
    etag: str            # lowercase hex, with `-N` for multipart objects; rendered per client
    crc64: int
    mtime: float
    type: str            # Normal | Multipart
    headers: dict[str, str]   # content-type and the other standard headers given at upload
    meta: dict[str, str]      # user metadata, names without the x-oss-meta-/x-amz-meta- prefix
    blob: str


@dataclass
class Upload:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    headers: dict[str, str]
    meta: dict[str, str]


@dataclass
class Part:
    upload_id: str
    part_number: int
    size: int
    etag: str
    crc64: int
    mtime: float
    blob: str


def _object(row: tuple) -> ObjectRecord:
    b, k, size, etag, crc, mtime, type_, headers, meta, blob = row
    return ObjectRecord(b, k, size, etag, int(crc), mtime, type_, json.loads(headers), json.loads(meta), blob)


_OBJECT_COLUMNS = "bucket, key, size, etag, crc64, mtime, type, headers, meta, blob"


class MetaDB:
    def __init__(self, path: Path, blobs: BlobStore) -> None:
        self.blobs = blobs
        self._conn = open_private_db(path)
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self.lock = threading.RLock()
        self._released: list[str] | None = None

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    def _q(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.lock:
            return self._conn.execute(sql, args).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[MetaDB]:
        """Atomic writes; blobs given to `release` inside are deleted once the commit is durable."""
        with self.lock:
            if self._released is not None:  # nested: the outer transaction commits
                yield self
                return
            self._released = []
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._conn.execute("ROLLBACK")
                self._released = None
                raise
            self._conn.execute("COMMIT")
            released, self._released = self._released, None
            for blob in released:
                self.blobs.delete(blob)

    def release(self, blob: str) -> None:
        assert self._released is not None, "release() belongs inside a transaction"
        self._released.append(blob)

    def referenced_blobs(self) -> set[str]:
        rows = self._q("SELECT blob FROM objects UNION ALL SELECT blob FROM parts")
        return {r[0] for r in rows}

    # -- buckets -------------------------------------------------------------------------------
    def bucket(self, name: str) -> Bucket | None:
        rows = self._q("SELECT name, created, acl, storage_class, redundancy, tags FROM buckets WHERE name=?", (name,))
        if not rows:
            return None
        name, created, acl, sc, red, tags = rows[0]
        return Bucket(name, created, acl, sc, red, json.loads(tags))

    def buckets(self) -> list[Bucket]:
        names = [r[0] for r in self._q("SELECT name FROM buckets ORDER BY name")]
        return [b for b in (self.bucket(n) for n in names) if b is not None]

    def put_bucket(self, b: Bucket) -> None:
        with self.transaction():
            self._conn.execute(
                "INSERT INTO buckets (name, created, acl, storage_class, redundancy, tags) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET acl=excluded.acl, tags=excluded.tags",
                (b.name, b.created, b.acl, b.storage_class, b.redundancy, json.dumps(b.tags)))

    def set_bucket_created(self, name: str, created: float) -> None:
        with self.transaction():
            self._conn.execute("UPDATE buckets SET created=? WHERE name=?", (created, name))

    def versioning(self, name: str) -> str:
        """The bucket's versioning status: "" (never enabled), Enabled or Suspended."""
        rows = self._q("SELECT status FROM bucket_versioning WHERE name=?", (name,))
        return rows[0][0] if rows else ""

    def set_versioning(self, name: str, status: str) -> None:
        with self.transaction():
            self._conn.execute("INSERT INTO bucket_versioning (name, status) VALUES (?, ?) "
                               "ON CONFLICT (name) DO UPDATE SET status=excluded.status", (name, status))

    def delete_bucket(self, name: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM buckets WHERE name=?", (name,))
            self._conn.execute("DELETE FROM bucket_versioning WHERE name=?", (name,))

    def bucket_is_empty(self, name: str) -> bool:
        return not self._q("SELECT 1 FROM objects WHERE bucket=? LIMIT 1", (name,)) and \
            not self._q("SELECT 1 FROM uploads WHERE bucket=? LIMIT 1", (name,))

    # -- objects -------------------------------------------------------------------------------
    def object(self, bucket: str, key: str) -> ObjectRecord | None:
        rows = self._q(f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket=? AND key=?", (bucket, key))
        return _object(rows[0]) if rows else None

    def objects_from(self, bucket: str, start: str, inclusive: bool, limit: int) -> list[ObjectRecord]:
        """Objects in key order from `start` on."""
        op = ">=" if inclusive else ">"
        rows = self._q(f"SELECT {_OBJECT_COLUMNS} FROM objects WHERE bucket=? AND key {op} ? ORDER BY key LIMIT ?",
                       (bucket, start, limit))
        return [_object(r) for r in rows]

    def put_object(self, rec: ObjectRecord) -> None:
        """Insert or replace; the replaced object's blob goes unless the new record reuses it."""
        with self.transaction():
            old = self.object(rec.bucket, rec.key)
            self._conn.execute(
                f"INSERT OR REPLACE INTO objects ({_OBJECT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rec.bucket, rec.key, rec.size, rec.etag, str(rec.crc64), rec.mtime, rec.type,
                 json.dumps(rec.headers), json.dumps(rec.meta), rec.blob))
            if old is not None and old.blob != rec.blob:
                self.release(old.blob)

    def delete_object(self, bucket: str, key: str) -> bool:
        with self.transaction():
            old = self.object(bucket, key)
            if old is None:
                return False
            self._conn.execute("DELETE FROM objects WHERE bucket=? AND key=?", (bucket, key))
            self.release(old.blob)
            return True

    # -- multipart uploads ---------------------------------------------------------------------
    def add_upload(self, up: Upload) -> None:
        with self.transaction():
            self._conn.execute("INSERT INTO uploads (upload_id, bucket, key, initiated, headers, meta) "
                               "VALUES (?, ?, ?, ?, ?, ?)",
                               (up.upload_id, up.bucket, up.key, up.initiated, json.dumps(up.headers),
                                json.dumps(up.meta)))

    def upload(self, upload_id: str) -> Upload | None:
        rows = self._q("SELECT upload_id, bucket, key, initiated, headers, meta FROM uploads WHERE upload_id=?",
                       (upload_id,))
        if not rows:
            return None
        uid, b, k, initiated, headers, meta = rows[0]
        return Upload(uid, b, k, initiated, json.loads(headers), json.loads(meta))

    def uploads(self, bucket: str) -> list[Upload]:
        ids = self._q("SELECT upload_id FROM uploads WHERE bucket=? ORDER BY key, initiated, upload_id", (bucket,))
        return [u for u in (self.upload(r[0]) for r in ids) if u is not None]

    def put_part(self, part: Part) -> bool:
        """Record a part; False (and the blob released) when the upload is gone meanwhile."""
        with self.transaction():
            if self.upload(part.upload_id) is None:
                self.release(part.blob)
                return False
            old = self._q("SELECT blob FROM parts WHERE upload_id=? AND part_number=?",
                          (part.upload_id, part.part_number))
            self._conn.execute(
                "INSERT OR REPLACE INTO parts (upload_id, part_number, size, etag, crc64, mtime, blob) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (part.upload_id, part.part_number, part.size, part.etag, str(part.crc64), part.mtime, part.blob))
            if old and old[0][0] != part.blob:
                self.release(old[0][0])
            return True

    def parts(self, upload_id: str) -> list[Part]:
        rows = self._q("SELECT upload_id, part_number, size, etag, crc64, mtime, blob FROM parts "
                       "WHERE upload_id=? ORDER BY part_number", (upload_id,))
        return [Part(u, n, s, e, int(c), m, b) for u, n, s, e, c, m, b in rows]

    def drop_upload(self, upload_id: str) -> None:
        """Forget an upload and its parts (within the caller's transaction when there is one)."""
        with self.transaction():
            for part in self.parts(upload_id):
                self.release(part.blob)
            self._conn.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
            self._conn.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
