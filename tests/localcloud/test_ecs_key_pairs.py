"""ECS key pairs through the official SDK: import, create, describe, delete, and a launch's key pair, with
ECS's fingerprints and refusals."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as m
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from localcloud import key_pairs

from .ecs_support import Network, api_error, make_network, run, ssh_keygen_md5, unique


@pytest.fixture(scope="module")
def ecs(localcloud: Any) -> Any:
    return localcloud.client("ecs")


@pytest.fixture(scope="module")
def net(localcloud: Any) -> Network:
    return make_network(localcloud, cidr="172.16.30.0/24")


def openssh(public_key: Any, comment: str = "test@controller") -> str:
    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}"


def describe(ecs: Any, localcloud: Any, name: str, **fields: Any) -> list[Any]:
    return ecs.describe_key_pairs(m.DescribeKeyPairsRequest(region_id=localcloud.region, key_pair_name=name,
                                                            **fields)).body.key_pairs.key_pair


def test_an_imported_key_gets_ecs_fingerprint_and_its_name_once(ecs: Any, localcloud: Any, tmp_path: Path) -> None:
    name = unique("controller")
    public_key = openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())
    answer = ecs.import_key_pair(m.ImportKeyPairRequest(region_id=localcloud.region, key_pair_name=name,
                                                        public_key_body=public_key)).body
    # RFC 4716's MD5 fingerprint, as `ssh-keygen -E md5 -l` prints it.
    (tmp_path / "key.pub").write_text(public_key + "\n")
    assert answer.key_pair_finger_print == ssh_keygen_md5(tmp_path / "key.pub")
    (found,) = describe(ecs, localcloud, name, include_public_key=True)
    assert (found.key_pair_name, found.key_pair_finger_print) == (name, answer.key_pair_finger_print)
    assert found.public_key == public_key
    assert describe(ecs, localcloud, name)[0].public_key is None  # only when asked for
    assert [k.key_pair_name for k in describe(ecs, localcloud, name[:-2] + "*")] == [name]
    again = api_error(ecs.import_key_pair, m.ImportKeyPairRequest(region_id=localcloud.region, key_pair_name=name,
                                                                  public_key_body=public_key))
    assert again.code == "KeyPair.AlreadyExist" and "The key pair already exist." in again.message


@pytest.mark.parametrize(("name", "body", "code"), [
    ("ed25519-key", "ED25519", "InvalidPublicKeyBody.Malformed"),  # not among ImportKeyPair's key types
    ("garbled-key", "ssh-rsa not-base64!", "InvalidPublicKeyBody.Malformed"),
    ("1starts-with-a-digit", "RSA", "InvalidKeyPairName.Malformed"),
    ("x", "RSA", "InvalidKeyPairName.Malformed"),
    ("http://key", "RSA", "InvalidKeyPairName.Malformed"),
])
def test_what_import_key_pair_refuses(ecs: Any, localcloud: Any, name: str, body: str, code: str) -> None:
    keys = {"RSA": openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()),
            "ED25519": openssh(ed25519.Ed25519PrivateKey.generate().public_key())}
    error = api_error(ecs.import_key_pair, m.ImportKeyPairRequest(region_id=localcloud.region, key_pair_name=name,
                                                                  public_key_body=keys.get(body, body)))
    assert error.code == code
    assert describe(ecs, localcloud, name) == []


def test_a_created_key_pair_returns_its_private_key_once(ecs: Any, localcloud: Any) -> None:
    name = unique("made-by-ecs")
    answer = ecs.create_key_pair(m.CreateKeyPairRequest(region_id=localcloud.region, key_pair_name=name)).body
    private = serialization.load_pem_private_key(answer.private_key_body.encode(), password=None)
    public_key = openssh(private.public_key())
    (found,) = describe(ecs, localcloud, name, include_public_key=True)
    assert found.public_key.split()[:2] == public_key.split()[:2]
    assert found.key_pair_finger_print == answer.key_pair_finger_print == key_pairs.fingerprint(
        base64.b64decode(public_key.split()[1]))
    assert answer.key_pair_id.startswith("skp-")


def test_a_launch_takes_an_existing_key_pair_which_then_cannot_be_deleted(ecs: Any, localcloud: Any,
                                                                           net: Network) -> None:
    missing = api_error(run, localcloud, net, key_pair_name="no-such-key")
    assert missing.code == "InvalidKeyPairName.NotFound"
    name = unique("launch-key")
    ecs.import_key_pair(m.ImportKeyPairRequest(region_id=localcloud.region, key_pair_name=name, public_key_body=openssh(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())))
    (instance_id,) = run(localcloud, net, key_pair_name=name)
    delete = m.DeleteKeyPairsRequest(region_id=localcloud.region, key_pair_names=json.dumps([name]))
    assert api_error(ecs.delete_key_pairs, delete).code == "InvalidParameter.KeypairAlreadyAttachedInstance"
    ecs.delete_instance(m.DeleteInstanceRequest(instance_id=instance_id, force=True))
    ecs.delete_key_pairs(delete)
    assert describe(ecs, localcloud, name) == []
    bad = m.DeleteKeyPairsRequest(region_id=localcloud.region, key_pair_names="not json")
    assert api_error(ecs.delete_key_pairs, bad).code == "InvalidKeyPairNames.ValueNotSupported"
