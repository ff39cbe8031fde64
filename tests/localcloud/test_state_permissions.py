"""localcloud's state directory holds the account's secrets: it and every file in it that holds one are
owner-only, also for a state directory made before they were."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from alibabacloud_ram20150501 import models as ram_models


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def files_holding(root: Path, secret: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


def test_the_state_directory_and_the_files_with_secrets_are_owner_only(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    # A write, so that the database's write-ahead log exists and holds something.
    cloud.client("ram").create_role(ram_models.CreateRoleRequest(
        role_name="perm-probe", assume_role_policy_document=json.dumps({"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": ["ecs.aliyuncs.com"]}}]})))
    assert mode(cloud.state_dir) == 0o700
    secret = cloud.access_key_secret.encode()
    holders = files_holding(cloud.state_dir, secret)
    assert any(p.name.startswith("state.db") for p in holders), holders  # the probe looks in the right place
    for path in holders:
        assert mode(path) & 0o077 == 0, f"{path} is {oct(mode(path))}"
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        assert mode(cloud.state_dir / name) == 0o600, name
    for path in cloud.state_dir.rglob("*.db"):
        assert mode(path) & 0o077 == 0, f"{path} is {oct(mode(path))}"


def test_a_state_directory_made_open_is_closed_at_the_next_start(make_localcloud: Any) -> None:
    cloud = make_localcloud()
    cloud_dir = cloud.state_dir
    os.chmod(cloud_dir, 0o755)
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        if (cloud_dir / name).exists():
            os.chmod(cloud_dir / name, 0o644)
    cloud.restart()
    assert mode(cloud_dir) == 0o700
    assert mode(cloud_dir / "state.db") == 0o600
