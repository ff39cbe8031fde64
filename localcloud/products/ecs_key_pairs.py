"""ECS: SSH key pairs (`key_pairs.KEY_PAIR` records) - ImportKeyPair, CreateKeyPair, DescribeKeyPairs,
DeleteKeyPairs, with ECS's names, fingerprints and refusals (see `key_pairs`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .. import ids, instances, key_pairs
from ..clock import iso_seconds
from ..errors import ApiError, missing
from ..registry import Request, action
from .ecs_common import Record, dry_run, matches_name, matches_tags, page_numbered, render_tags, tags_param

if TYPE_CHECKING:
    from ..cloud import Cloud


def _new_pair(cloud: Cloud, req: Request, public_key: str) -> Record:
    p = req.params
    name = key_pairs.check_name(p.str("KeyPairName"))
    _kind, blob = key_pairs.parse_public_key(public_key)
    tags = tags_param(p)
    dry_run(p)
    if key_pairs.KEY_PAIR.find(cloud.store, name) is not None:
        raise ApiError("KeyPair.AlreadyExist", "The key pair already exist.")
    if len(key_pairs.KEY_PAIR.all(cloud.store)) >= key_pairs.MAX_PER_REGION:
        raise ApiError("QuotaExceed.KeyPair", "The key pair quota exceeds.", 403)
    record = {"KeyPairName": name, "KeyPairId": ids.new_id("skp", cloud.settings.region),
              "KeyPairFingerPrint": key_pairs.fingerprint(blob), "PublicKey": public_key.strip(),
              "CreationTime": iso_seconds(cloud.clock.now()), "ResourceGroupId": p.str("ResourceGroupId", ""),
              "Tags": tags}
    key_pairs.KEY_PAIR.save(cloud.store, record)
    return record


@action("ecs", "ImportKeyPair")
def import_key_pair(cloud: Cloud, req: Request) -> dict:
    """Keep the public key of a key pair made elsewhere."""
    record = _new_pair(cloud, req, req.params.str("PublicKeyBody") or "")
    return {"KeyPairName": record["KeyPairName"], "KeyPairFingerPrint": record["KeyPairFingerPrint"]}


@action("ecs", "CreateKeyPair")
def create_key_pair(cloud: Cloud, req: Request) -> dict:
    """Make an RSA key pair: ECS keeps the public key and returns the private one, once."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key_pairs.check_name(req.params.str("KeyPairName"))
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
    record = _new_pair(cloud, req, public)
    body = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption()).decode()
    return {"KeyPairName": record["KeyPairName"], "KeyPairId": record["KeyPairId"],
            "KeyPairFingerPrint": record["KeyPairFingerPrint"], "PrivateKeyBody": body}


def _render(record: Record, with_public_key: bool) -> dict[str, Any]:
    rendered = {field: record[field] for field in ("KeyPairName", "KeyPairFingerPrint", "CreationTime",
                                                   "ResourceGroupId")}
    rendered["Tags"] = render_tags(record)
    if with_public_key:
        rendered["PublicKey"] = record["PublicKey"]
    return rendered


@action("ecs", "DescribeKeyPairs")
def describe_key_pairs(cloud: Cloud, req: Request) -> dict:
    """KeyPairName matches exactly or with `*` wildcards; KeyPairFingerPrint exactly."""
    p = req.params
    name, fingerprint, tags = p.str("KeyPairName"), p.str("KeyPairFingerPrint"), p.tags("Tag")
    found = [record for record in key_pairs.KEY_PAIR.all(cloud.store)
             if matches_name(record["KeyPairName"], name)
             and (not fingerprint or record["KeyPairFingerPrint"] == fingerprint) and matches_tags(record, tags)]
    chunk, paging = page_numbered(p, found, default_size=10, max_size=50)
    with_public_key = bool(p.bool("IncludePublicKey", False))
    return {**paging, "KeyPairs": {"KeyPair": [_render(record, with_public_key) for record in chunk]}}


@action("ecs", "DeleteKeyPairs")
def delete_key_pairs(cloud: Cloud, req: Request) -> dict:
    """Delete key pairs by name (a JSON array of up to 100); one bound to an instance is refused."""
    raw = req.params.str("KeyPairNames")
    if not raw:
        raise missing("KeyPairNames")
    try:
        names = json.loads(raw)
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise ApiError("InvalidKeyPairNames.ValueNotSupported", 'The specified parameter "KeyPairNames" is not valid.')
    if len(names) > 100:
        raise ApiError("InstanceKeyPairLimitExceeded", "Exceeding the allowed amount of instance which will be "
                       "deleted.", 403)
    bound = {instance.get("KeyPairName") for instance in instances.INSTANCE.all(cloud.store)}
    if bound & set(names):
        raise ApiError("InvalidParameter.KeypairAlreadyAttachedInstance", 'The specified parameter "KeyPairNames" '
                       "attached to instances can not be deleted.")
    for name in names:
        key_pairs.KEY_PAIR.delete(cloud.store, name)
    return {}

