"""The object storage of one cloud: its metadata database and blob store under <state_dir>/oss/."""

from __future__ import annotations

import logging
import re

from ..cloud import Cloud
from ..errors import ApiError
from .blobs import BlobStore
from .errors import no_such_bucket
from .meta import Bucket, MetaDB
from .xmlio import Child

log = logging.getLogger("localcloud.oss")

# OSS takes V1 signatures only on buckets created before this moment (2025-09-01 00:00 UTC).
V1_RETIRED_AT = 1756684800.0
# The creation time the admin route `oss-legacy-bucket` gives a bucket: a day before.
LEGACY_CREATED = V1_RETIRED_AT - 86400

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def check_bucket_name(name: str) -> None:
    if not BUCKET_NAME.match(name):
        raise ApiError("InvalidBucketName", f"The specified bucket is not valid: {name!r}. A bucket name has 3 to "
                       "63 characters: lowercase letters, digits and hyphens, starting and ending with a letter "
                       "or digit.", 400)


class OssService:
    def __init__(self, cloud: Cloud) -> None:
        root = cloud.state_dir / "oss"
        self.cloud = cloud
        self.blobs = BlobStore(root)
        self.meta = MetaDB(root / "meta.db", self.blobs)
        removed = self.blobs.sweep(self.meta.referenced_blobs())
        if removed:
            log.info("removed %d leftover files of interrupted uploads", removed)
        self.region = cloud.settings.region
        self.location = f"oss-{self.region}"

    def close(self) -> None:
        self.meta.close()

    @property
    def owner_id(self) -> str:
        return self.cloud.account_uid

    def owner(self) -> list[Child]:
        return [("ID", self.owner_id), ("DisplayName", self.owner_id)]

    def bucket(self, name: str) -> Bucket:
        found = self.meta.bucket(name)
        if found is None:
            raise no_such_bucket(name)
        return found

    def make_legacy(self, name: str) -> Bucket:
        """Make a bucket one created before V1 signatures were retired (for a test of a legacy bucket)."""
        self.bucket(name)
        self.meta.set_bucket_created(name, LEGACY_CREATED)
        return self.bucket(name)
