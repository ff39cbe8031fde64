"""Object data on disk: every blob is written to a temporary file, fsynced and renamed into place.

A blob is never visible half-written: a daemon killed mid-upload leaves only a temporary file,
removed at the next start. Metadata points at a blob only after the blob is complete, and a blob
nothing points at any more (replaced, deleted, or orphaned by a crash between rename and commit)
is removed; so data and metadata agree after any crash.

Checksums are OSS's: the MD5 behind the ETag and CRC-64/ECMA-182 (`x-oss-hash-crc64ecma`),
computed with the OSS SDK's own implementation while the data streams through.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from alibabacloud_oss_v2.crc import Crc64

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Written:
    blob: str
    size: int
    md5_hex: str
    crc64: int
    sha256_hex: str | None = None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def combine_crc64(parts: Iterable[tuple[int, int]]) -> int:
    """CRC-64 of concatenated data from each part's (crc, size), as OSS computes a multipart object's."""
    crc = 0
    for part_crc, size in parts:
        crc = Crc64.combine(crc, part_crc, size) if size else crc
    return crc


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.data = root / "blobs"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)

    def path(self, blob: str) -> Path:
        return self.data / blob[:2] / blob

    def open(self, blob: str) -> BinaryIO:
        return open(self.path(blob), "rb")

    def delete(self, blob: str) -> None:
        self.path(blob).unlink(missing_ok=True)

    def _new_tmp(self) -> tuple[Path, BinaryIO]:
        path = self.tmp / uuid.uuid4().hex
        return path, open(path, "xb")

    def _publish(self, tmp_path: Path, handle: BinaryIO) -> str:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        blob = uuid.uuid4().hex
        target = self.path(blob)
        target.parent.mkdir(exist_ok=True)
        os.rename(tmp_path, target)
        _fsync_dir(target.parent)
        return blob

    def write(self, read: Callable[[int], bytes], want_sha256: bool = False) -> Written:
        """Stream `read(n)` (b'' at the end) into a new blob, hashing as it goes."""
        md5, crc = hashlib.md5(), Crc64(0)
        sha = hashlib.sha256() if want_sha256 else None
        size = 0
        tmp_path, handle = self._new_tmp()
        try:
            while chunk := read(CHUNK):
                handle.write(chunk)
                md5.update(chunk)
                crc.update(chunk)
                if sha is not None:
                    sha.update(chunk)
                size += len(chunk)
            blob = self._publish(tmp_path, handle)
        except BaseException:
            handle.close()
            tmp_path.unlink(missing_ok=True)
            raise
        return Written(blob, size, md5.hexdigest(), crc.sum64(), sha.hexdigest() if sha else None)

    def copy_range(self, src: BinaryIO, start: int, length: int) -> Written:
        """A new blob holding `length` bytes of an open blob from `start` (an UploadPartCopy)."""
        src.seek(start)
        remaining = length

        def read(n: int) -> bytes:
            nonlocal remaining
            chunk = src.read(min(n, remaining))
            remaining -= len(chunk)
            return chunk

        return self.write(read)

    def concat(self, sources: list[BinaryIO]) -> str:
        """A new blob made of open blobs end to end, copied by the kernel (multipart completion, copy).

        The callers open the sources while holding the metadata lock, so a blob replaced meanwhile
        stays readable through its open handle.
        """
        tmp_path, handle = self._new_tmp()
        try:
            out = handle.fileno()
            for src in sources:
                remaining = os.fstat(src.fileno()).st_size
                offset = 0
                while remaining:
                    copied = os.copy_file_range(src.fileno(), out, remaining, offset)
                    if copied == 0:
                        raise OSError(f"{src.name} shrank while being copied")
                    remaining -= copied
                    offset += copied
            return self._publish(tmp_path, handle)
        except BaseException:
            handle.close()
            tmp_path.unlink(missing_ok=True)
            raise

    def sweep(self, referenced: set[str]) -> int:
        """Remove leftovers of a crash: temporary files and blobs no metadata points at."""
        removed = 0
        for leftover in self.tmp.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        for bucket_dir in self.data.iterdir():
            for path in bucket_dir.iterdir():
                if path.name not in referenced:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed


def multipart_etag(part_md5s: list[str]) -> str:
    """OSS's (and S3's) multipart ETag: MD5 of the parts' binary MD5s, then `-<part count>`."""
    digest = hashlib.md5(b"".join(binascii.unhexlify(m) for m in part_md5s)).hexdigest()
    return f"{digest}-{len(part_md5s)}"
