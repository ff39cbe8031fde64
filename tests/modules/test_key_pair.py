"""alicloud_key_pair against localcloud: the controller's public key imported as an ECS key pair, in check mode,
again (unchanged), with another key (refused, then replaced with force), an ed25519 key (refused before any
call, as ECS refuses it) and removed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from alibabacloud_ecs20140526 import models as ecs_models

from ..localcloud.ecs_support import ssh_keygen_md5
from ..localcloud.oss_support import unique
from .conftest import task


def make_key(path: Path, kind: str = "rsa") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *(["-b", "2048"] if kind == "rsa" else []), "-N", "", "-C",
                    "controller", "-f", str(path)], check=True)
    return path.with_suffix(".pub")


def test_the_controllers_key_is_imported_once_and_replaced_only_when_forced(playbook, localcloud, tmp_path) -> None:
    name = unique("controller-key")
    first, second = make_key(tmp_path / "id_rsa"), make_key(tmp_path / "other_rsa")
    ed25519 = make_key(tmp_path / "id_ed25519", "ed25519")
    key = {"name": name, "public_key_file": str(first)}
    run = playbook([
        task("check mode", "alicloud_key_pair", key, check_mode=True),
        task("import", "alicloud_key_pair", key, diff=True),
        task("again", "alicloud_key_pair", {"name": name, "public_key": first.read_text()}),
        task("another key", "alicloud_key_pair", {**key, "public_key_file": str(second)}, ignore_errors=True),
        task("forced", "alicloud_key_pair", {**key, "public_key_file": str(second), "force": True}),
        task("ed25519", "alicloud_key_pair", {**key, "public_key_file": str(ed25519)}, ignore_errors=True),
        task("the private key", "alicloud_key_pair", {**key, "public_key_file": str(tmp_path / "id_rsa")},
             ignore_errors=True),
        task("remove", "alicloud_key_pair", {"name": name, "state": "absent"}),
        task("remove again", "alicloud_key_pair", {"name": name, "state": "absent"}),
    ])
    assert run.returncode == 0, run.output[-3000:]
    checked = run["check mode"]
    assert checked["changed"] and checked["key_pair"]["key_pair_finger_print"] == ssh_keygen_md5(first)
    imported = run["import"]
    assert imported["changed"] and imported["key_pair"]["key_pair_finger_print"] == ssh_keygen_md5(first)
    assert imported["diff"]["before"] == {} and imported["diff"]["after"]["key_pair_name"] == name
    assert not run["again"]["changed"]
    assert run["another key"]["failed"] and "holds another public key" in run["another key"]["msg"]
    assert run["forced"]["changed"] and run["forced"]["key_pair"]["key_pair_finger_print"] == ssh_keygen_md5(second)
    assert "not ssh-ed25519" in run["ed25519"]["msg"]
    assert "holds a private key" in run["the private key"]["msg"]
    assert run["remove"]["changed"] and not run["remove again"]["changed"]
    left = localcloud.client("ecs").describe_key_pairs(ecs_models.DescribeKeyPairsRequest(
        region_id=localcloud.region, key_pair_name=name)).body.key_pairs.key_pair
    assert left == []
