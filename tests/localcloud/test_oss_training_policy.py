"""The instances' OSS policy (alicloud_policy.oss_training_policy) as localcloud's RAM evaluates it, with the
role's STS credentials: reads and listings stay inside the prefixes (oss:Prefix conditions), and a real
s3fs mount still mounts, reads the model and writes checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import oss2
import pytest
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_sts20150401 import models as sts_models
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_policy import oss_training_policy

from .oss_support import Keys, oss2_bucket, root_keys, unique
from .s3fs_support import require_mount_tools, unmount

MODEL = "DeepSeek-R1-Distill-Qwen-7B"
OBJECTS = {
    f"{MODEL}/config.json": b"{}", f"{MODEL}/model.safetensors": b"weights",
    "alpaca-gpt4-data-zh/train.json": b"[]", "output/checkpoint-3/trainer_state.json": b"{}",
    # Beside the prefixes: what the old `name*` grants let an instance read.
    "output-private/secret.txt": b"private", "outputs.bak": b"backup", f"{MODEL}-other/weights.bin": b"other",
}


@pytest.fixture(scope="module")
def setup(localcloud: Any) -> dict[str, Any]:
    bucket = unique("policy")
    root = oss2_bucket(localcloud, root_keys(localcloud), bucket)
    root.create_bucket()
    for key, data in OBJECTS.items():
        root.put_object(key, data)
    uid = localcloud.client("sts").get_caller_identity().body.account_id
    ram, role, policy = localcloud.client("ram"), unique("trainer"), unique("train-oss")
    ram.create_role(ram_models.CreateRoleRequest(role_name=role, assume_role_policy_document=json.dumps({
        "Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                       "Principal": {"RAM": [f"acs:ram::{uid}:root"]}}]})))
    document = oss_training_policy(bucket, [f"{MODEL}/", "alpaca-gpt4-data-zh/"], ["output/"])
    ram.create_policy(ram_models.CreatePolicyRequest(policy_name=policy, policy_document=json.dumps(document)))
    ram.attach_policy_to_role(ram_models.AttachPolicyToRoleRequest(policy_type="Custom", policy_name=policy,
                                                                   role_name=role))
    creds = localcloud.client("sts").assume_role(sts_models.AssumeRoleRequest(
        role_arn=f"acs:ram::{uid}:role/{role.lower()}", role_session_name="trainer")).body.credentials
    keys = Keys(creds.access_key_id, creds.access_key_secret, creds.security_token)
    return {"bucket": bucket, "keys": keys, "role": oss2_bucket(localcloud, keys, bucket)}


def denied(call: Any) -> bool:
    try:
        call()
    except oss2.exceptions.AccessDenied:
        return True
    return False


def readable(path: Path, data: bytes) -> bool:
    """Whether the mount gives the object's bytes (s3fs may fail the read or give nothing)."""
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def test_the_role_reads_its_prefixes_and_nothing_beside_them(setup: dict[str, Any]) -> None:
    role = setup["role"]
    assert role.get_object(f"{MODEL}/config.json").read() == b"{}"
    assert role.get_object("output/checkpoint-3/trainer_state.json").read() == b"{}"
    role.put_object("output/checkpoint-6/trainer_state.json", b"{}")
    for key in ("output-private/secret.txt", "outputs.bak", f"{MODEL}-other/weights.bin"):
        assert denied(lambda k=key: role.get_object(k)), key
    # The names a mount looks up answer 404, not 403 (a 403 makes them unreadable files).
    for name in (MODEL, f"{MODEL}_$folder$", "alpaca-gpt4-data-zh#500"):
        with pytest.raises(oss2.exceptions.NoSuchKey):
            role.get_object(name)


def test_the_role_lists_inside_its_prefixes_and_from_the_top(setup: dict[str, Any]) -> None:
    """Listings by prefix stay inside the prefixes; the listing from the top, which s3fs and ossfs make to check
    the bucket when they mount it, is allowed (RAM cannot tell it from any other): names, not contents."""
    role = setup["role"]
    inside = role.list_objects(prefix=f"{MODEL}/", delimiter="/")
    assert sorted(o.key for o in inside.object_list) == [f"{MODEL}/config.json", f"{MODEL}/model.safetensors"]
    assert sorted(o.key for o in role.list_objects(prefix="output/").object_list) == [
        "output/checkpoint-3/trainer_state.json", "output/checkpoint-6/trainer_state.json"]
    top = role.list_objects(prefix="", delimiter="/")
    assert "outputs.bak" in [o.key for o in top.object_list] and "output-private/" in top.prefix_list
    assert denied(lambda: role.list_objects(prefix="output-private/", delimiter="/"))
    assert denied(lambda: role.list_objects(prefix=f"{MODEL}-other/"))
    assert denied(lambda: role.list_objects(prefix="out"))


def test_a_mount_with_the_role_still_mounts_reads_and_writes(localcloud: Any, setup: dict[str, Any],
                                                            tmp_path: Path) -> None:
    require_mount_tools(container=False)
    keys, mnt = setup["keys"], tmp_path / "mnt"
    mnt.mkdir()
    # s3fs takes STS credentials from its environment (a passwd file holds no token).
    env = {**os.environ, "AWSACCESSKEYID": keys.access_key_id, "AWSSECRETACCESSKEY": keys.access_key_secret,
           "AWSSESSIONTOKEN": keys.security_token or ""}
    subprocess.run(["s3fs", setup["bucket"], str(mnt), "-o",
                    f"url={localcloud.oss_endpoint},use_path_request_style,use_session_token,dbglevel=warn"],
                   check=True, capture_output=True, timeout=60, env=env)
    deadline = time.monotonic() + 20
    while not os.path.ismount(mnt) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert os.path.ismount(mnt)
        assert (mnt / MODEL / "config.json").read_text() == "{}"
        assert sorted(p.name for p in (mnt / MODEL).iterdir()) == ["config.json", "model.safetensors"]
        assert {"output", MODEL}.issubset(p.name for p in mnt.iterdir())
        assert not (mnt / "alpaca-gpt4-data-zh#500").exists()
        (mnt / "output" / "checkpoint-9").mkdir()
        (mnt / "output" / "checkpoint-9" / "adapter_model.safetensors").write_bytes(b"adapter")
        assert sorted(p.name for p in (mnt / "output").iterdir())[-1] == "checkpoint-9"
        for name in ("output-private/secret.txt", "outputs.bak", f"{MODEL}-other/weights.bin"):
            assert not readable(mnt / name, OBJECTS[name]), name
    finally:
        unmount(mnt)
    root = oss2_bucket(localcloud, root_keys(localcloud), setup["bucket"])
    assert root.get_object("output/checkpoint-9/adapter_model.safetensors").read() == b"adapter"
