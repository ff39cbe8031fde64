"""The bucket is mounted with V4 signatures whichever client mounts it: OSS refuses V1 (ossfs 1.x's default) on
every bucket created since 2025-09-01, and AWS SigV2 (s3fs's fallback) unless Alibaba's support enabled it.

The ossfs client cannot be installed here (Alibaba's package is downloaded from Alibaba), so its fstab options
are read from the role's own expression; s3fs's are checked on a mount by molecule's ossfs_mount scenario."""

from __future__ import annotations

import ast
from pathlib import Path

import jinja2
import pytest
import yaml

MOUNT_TASKS = Path(__file__).resolve().parents[2] / "roles" / "ossfs_mount" / "tasks" / "mount.yml"


def signature_options(**variables: str) -> list[str]:
    mount = next(task for task in yaml.safe_load(MOUNT_TASKS.read_text()) if "ansible.posix.mount" in task)
    rendered = jinja2.Environment().from_string(mount["vars"]["__ossfs_mount_signature"]).render(**variables)
    return ast.literal_eval(rendered.strip())


@pytest.mark.parametrize(("client", "expected"), [("ossfs", ["sigv4", "region=cn-shanghai"]), ("s3fs", ["sigv4"])])
def test_each_client_signs_v4(client: str, expected: list[str]) -> None:
    assert signature_options(ossfs_mount_client=client, ossfs_mount_region="cn-shanghai") == expected


def test_the_signature_options_are_in_the_fstab_entry() -> None:
    mount = next(task for task in yaml.safe_load(MOUNT_TASKS.read_text()) if "ansible.posix.mount" in task)
    assert "__ossfs_mount_signature" in mount["vars"]["__ossfs_mount_fstab_options"]
