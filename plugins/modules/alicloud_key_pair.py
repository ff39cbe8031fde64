#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_key_pair
short_description: Import an SSH public key as an ECS key pair
description:
  - Imports the public key of an SSH key pair made elsewhere (the controller's, for example) as an ECS key
    pair (C(ImportKeyPair)), so that instances launched with it (O(name) as C(KeyPairName)) let its
    private key log in as root. ECS keeps the public key only.
  - Idempotent by fingerprint (RFC 4716's MD5 fingerprint, as ECS computes it). ECS cannot change the key
    of a key pair; a key pair of that name with another key is an error unless O(force) replaces it.
  - ECS imports C(ssh-rsa), C(ssh-dss) and C(ecdsa-sha2-*) keys (and their OpenSSH certificates), not
    C(ssh-ed25519); such a key is refused before any call.
options:
  name:
    description:
      - The key pair's name (2 to 128 characters, starting with a letter; letters, digits, C(:), C(_), C(.)
        and C(-)).
    type: str
    required: true
    aliases: [key_pair_name]
  public_key:
    description:
      - The public key, one OpenSSH line (C(ssh-rsa AAAA... comment)).
      - Without O(public_key) and O(public_key_file), V(present) only requires that the key pair exists (one
        made in the console, for example) and fails when it does not.
    type: str
  public_key_file:
    description: A file on the host that runs the module holding the public key (C(~/.ssh/id_rsa.pub)).
    type: path
  force:
    description:
      - Delete a key pair of that name that holds another key and import this one. ECS refuses to delete a key
        pair that instances are bound to.
    type: bool
    default: false
  state:
    description: V(absent) deletes the key pair (ECS refuses while instances are bound to it).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Import the controller's public key, for SSH to the template instance
  alicloud_key_pair:
    name: ess-lora-deepseek7b-controller
    public_key_file: ~/.ssh/id_rsa.pub

- name: Delete it
  alicloud_key_pair:
    name: ess-lora-deepseek7b-controller
    state: absent
"""

RETURN = r"""
key_pair:
  description: The key pair as ECS describes it (empty when absent).
  returned: always
  type: dict
  contains:
    key_pair_name: {description: The name., type: str, sample: ess-lora-deepseek7b-controller}
    key_pair_finger_print: {description: RFC 4716's MD5 fingerprint., type: str, sample: "2c:3b:...:9f"}
    creation_time: {description: When it was imported., type: str}
"""

import base64  # noqa: E402
import binascii  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import struct  # noqa: E402
from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402

# ImportKeyPair's documented encryption methods, by the type an OpenSSH line starts with.
KEY_TYPES = ("ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "ssh-rsa-cert-v00@openssh.com", "ssh-dss-cert-v00@openssh.com", "ssh-rsa-cert-v01@openssh.com",
             "ssh-dss-cert-v01@openssh.com", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
             "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521-cert-v01@openssh.com")
NAME = re.compile(r"^[A-Za-z\u4e00-\u9fa5][\w\u4e00-\u9fa5:.\-]{1,127}$")


class BadKey(ValueError):
    """A public key or name ECS would refuse; the message says what to do."""


def read_public_key(text: str) -> tuple[str, str]:
    """(the key line as imported, its fingerprint) of one OpenSSH public key line, refused as ECS refuses it."""
    fields = text.strip().split()
    if len(fields) < 2:
        raise BadKey("the public key is not an OpenSSH public key line (type, base64 key, comment).")
    if fields[0] == "ssh-ed25519":
        raise BadKey("ECS imports rsa, dsa and ecdsa keys (ImportKeyPair), not ssh-ed25519: make an RSA key "
                        "(ssh-keygen -t rsa -b 4096) and give its .pub.")
    if fields[0] not in KEY_TYPES:
        raise BadKey(f"ECS does not import {fields[0]!r} keys; it takes {', '.join(KEY_TYPES[:5])}.")
    try:
        blob = base64.b64decode(fields[1], validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        declared = blob[4:4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        raise BadKey("the public key's base64 part does not decode: give the .pub file, not the private key.") from None
    if declared != fields[0]:
        raise BadKey(f"the key says {fields[0]!r} but holds a {declared!r} key.")
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return " ".join(fields), ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def wanted_key(params: dict[str, Any]) -> str:
    if params.get("public_key"):
        return params["public_key"]
    path = params.get("public_key_file")
    if not os.path.isfile(path):
        raise BadKey(f"public_key_file {path} does not exist: make a key with ssh-keygen -t rsa -b 4096, or "
                        "point at its .pub.")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if "PRIVATE KEY" in text:
        raise BadKey(f"{path} holds a private key: give the public one ({path}.pub).")
    return text


def get_key_pair(module: AlicloudModule, name: str) -> dict[str, Any] | None:
    # KeyPairName takes `*` as a wildcard; a name holds none (NAME), so this is an exact match.
    body = module.call("ecs", "DescribeKeyPairs", {"RegionId": module.require_region(), "KeyPairName": name,
                                                   "PageSize": 50})
    found = [pair for pair in (body.get("KeyPairs") or {}).get("KeyPair", []) if pair.get("KeyPairName") == name]
    if not found:
        return None
    pair = found[0]
    return {field: pair.get(field) for field in ("KeyPairName", "KeyPairFingerPrint", "CreationTime")}


def delete(module: AlicloudModule, name: str) -> None:
    module.call("ecs", "DeleteKeyPairs", {"RegionId": module.require_region(), "KeyPairNames": json.dumps([name])})


def ensure_present(module: AlicloudModule, before: dict[str, Any] | None, line: str,
                   fingerprint: str) -> tuple[bool, dict[str, Any]]:
    name = module.params["name"]
    if before is not None and before["KeyPairFingerPrint"] == fingerprint:
        return False, before
    if before is not None and not module.params["force"]:
        module.fail_json(msg=f"The key pair {name} holds another public key (fingerprint {before['KeyPairFingerPrint']}"
                             f", this one {fingerprint}); ECS cannot change a key pair's key. Give another name, or "
                             "force: true to delete it and import this key (instances bound to it keep their key).")
    if module.check_mode:
        return True, {"KeyPairName": name, "KeyPairFingerPrint": fingerprint, "CreationTime": None}
    if before is not None:
        delete(module, name)
    module.call("ecs", "ImportKeyPair", {"RegionId": module.require_region(), "KeyPairName": name,
                                         "PublicKeyBody": line})
    return True, get_key_pair(module, name) or {}


def main() -> None:
    module = AlicloudModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["key_pair_name"]),
            public_key=dict(type="str"),
            public_key_file=dict(type="path"),
            force=dict(type="bool", default=False),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        mutually_exclusive=[["public_key", "public_key_file"]],
    )
    params = module.params
    if not NAME.match(params["name"]) or params["name"].startswith(("http://", "https://")):
        module.fail_json(msg=f"Key pair name {params['name']!r} is not one ECS takes: 2 to 128 characters, starting "
                             "with a letter; letters, digits, ':', '_', '.' and '-'.")
    line = fingerprint = ""
    given = params.get("public_key") or params.get("public_key_file")
    if params["state"] == "present" and given:
        try:
            line, fingerprint = read_public_key(wanted_key(params))
        except BadKey as err:
            module.fail_json(msg=f"Cannot import the key pair {params['name']}: {err}")
    before = get_key_pair(module, params["name"])
    if params["state"] == "present" and not given:
        if before is None:
            module.fail_json(msg=f"The key pair {params['name']} does not exist in {module.require_region()}: "
                                 "create or import it in the ECS console, or give the controller's public key "
                                 "(public_key_file) to import.")
        module.exit_resource(False, "key_pair", before, before)
    if params["state"] == "absent":
        if before is not None and not module.check_mode:
            delete(module, params["name"])
        module.exit_resource(before is not None, "key_pair", before, None)
    changed, after = ensure_present(module, before, line, fingerprint)
    module.exit_resource(changed, "key_pair", before, after)


if __name__ == "__main__":
    main()
