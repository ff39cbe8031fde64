"""One request as the operation handlers see it, and what they answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from ..errors import ApiError
from .errors import invalid_forbid_overwrite
from .meta import VERSIONED
from .signing import Caller, SignedRequest

if TYPE_CHECKING:
    from .service import OssService

META_PREFIXES = ("x-oss-meta-", "x-amz-meta-")
# Standard headers an object keeps from its upload and returns on GET/HEAD.
STORED_HEADERS = ("content-type", "content-encoding", "content-disposition", "content-language",
                  "cache-control", "expires")


class Body:
    """The request body as a stream: Content-Length or chunked transfer encoding."""

    def __init__(self, rfile: BinaryIO, length: int | None, chunked: bool) -> None:
        self._rfile = rfile
        self._remaining = length or 0
        self._chunked = chunked
        self._chunk_left = 0
        self._done = not chunked and not length

    @property
    def done(self) -> bool:
        return self._done

    def abandon(self) -> None:
        """Read no more of it (the request is refused and its connection closed)."""
        self._done = True
        self._remaining = 0

    @property
    def pending(self) -> int | None:
        """Bytes still unread when known (Content-Length), else None."""
        return None if self._chunked and not self._done else self._remaining

    def read(self, n: int) -> bytes:
        if self._done:
            return b""
        if not self._chunked:
            data = self._rfile.read(min(n, self._remaining))
            if not data:
                raise ApiError("IncompleteBody", "The request body ended before Content-Length bytes.", 400)
            self._remaining -= len(data)
            self._done = self._remaining == 0
            return data
        if self._chunk_left == 0:
            size_line = self._rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                self._chunk_left = int(size_line, 16)
            except ValueError:
                raise ApiError("InvalidRequest", "Malformed chunked request body.", 400) from None
            if self._chunk_left == 0:
                while self._rfile.readline(1024).strip():  # trailers
                    pass
                self._done = True
                return b""
        data = self._rfile.read(min(n, self._chunk_left))
        if not data:
            raise ApiError("IncompleteBody", "The chunked request body ended early.", 400)
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self._rfile.readline(16)
        return data

    def read_all(self, limit: int) -> bytes:
        out = bytearray()
        while chunk := self.read(64 * 1024):
            out += chunk
            if len(out) > limit:
                raise ApiError("EntityTooLarge", f"The request body is larger than {limit} bytes.", 400)
        return bytes(out)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: tuple[BinaryIO, int, int] | None = None   # an open file, offset, length: sent with sendfile
    content_type: str | None = None
    error_code: str = ""     # for the access log


@dataclass
class Call:
    op: str
    svc: OssService
    req: SignedRequest
    caller: Caller
    body: Body
    request_id: str

    @property
    def bucket(self) -> str:
        return self.req.bucket or ""

    @property
    def key(self) -> str:
        return self.req.key or ""

    @property
    def query(self) -> dict[str, str]:
        return self.req.query

    def header(self, name: str, default: str = "") -> str:
        value = self.req.header(name)
        return default if value is None else value

    def oss_header(self, suffix: str) -> str:
        """`x-oss-<suffix>` or S3's `x-amz-<suffix>`, whichever the client sent."""
        return self.header(f"x-oss-{suffix}") or self.header(f"x-amz-{suffix}")

    def forbid_overwrite(self) -> bool:
        """`x-oss-forbid-overwrite: true`: the write must not replace an object. Absent means false; a value
        other than true or false (in any case: SDKs send either) is an InvalidArgument. Ignored on a bucket
        whose versioning is Enabled or Suspended, as OSS ignores it ("invalid when the versioning status of
        the bucket is Enabled or Suspended", PutObject's documentation): the write replaces the object."""
        raw = self.header("x-oss-forbid-overwrite").strip()
        if raw.lower() not in ("", "true", "false"):
            raise invalid_forbid_overwrite(raw)
        return raw.lower() == "true" and self.svc.meta.versioning(self.bucket) not in VERSIONED

    @property
    def s3(self) -> bool:
        return self.caller.dialect == "s3"

    def etag(self, raw: str) -> str:
        """OSS writes ETags in upper case, S3 in lower case; clients compare them to their own."""
        return f'"{raw.lower() if self.s3 else raw.upper()}"'

    def user_meta(self) -> dict[str, str]:
        meta = {}
        for name, value in self.req.headers:
            lname = name.lower()
            for prefix in META_PREFIXES:
                if lname.startswith(prefix):
                    meta[lname[len(prefix):]] = value
        return meta

    def stored_headers(self) -> dict[str, str]:
        headers = {h: self.header(h) for h in STORED_HEADERS if self.header(h)}
        headers.setdefault("content-type", "application/octet-stream")
        return headers

    def meta_headers(self, meta: dict[str, str]) -> dict[str, str]:
        prefix = "x-amz-meta-" if self.s3 else "x-oss-meta-"
        return {prefix + k: v for k, v in meta.items()}
