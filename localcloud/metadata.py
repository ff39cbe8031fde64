"""The instance metadata service (`http://100.100.100.200`), as ECS answers it.

The caller is the instance whose PrivateIpAddress is the request's source address (the front door
on each instance network hands the connection over untouched, so the address is the instance's
own). Tokens follow ECS's security-hardening flow: `PUT /latest/api/token` with
`X-aliyun-ecs-metadata-token-ttl-seconds` (1 to 21600), then `X-aliyun-ecs-metadata-token` on
reads. A read without a token is answered, as in ECS's default mode (`HttpTokens=optional`);
a token that is wrong, expired or another instance's is refused with 401.

Role credentials are STS credentials of the instance's RAM role, cached per instance and replaced
once less than a third of their lifetime is left (ECS refreshes them well before they expire).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import credentials, instances, key_pairs, network
from .clock import iso_seconds

if TYPE_CHECKING:
    from .cloud import Cloud

METADATA_ADDRESS = "100.100.100.200"
TOKEN_TTL_HEADER = "x-aliyun-ecs-metadata-token-ttl-seconds"
TOKEN_HEADER = "x-aliyun-ecs-metadata-token"
MAX_TOKEN_TTL = 21600
ROLE_CREDENTIAL_SECONDS = 3600
# Credentials are replaced when less than this share of their lifetime is left.
ROLE_REFRESH_FRACTION = 1 / 3

META_DATA_KEYS = ("hostname", "image-id", "instance-id", "instance/", "instance-type", "mac", "network-type",
                  "owner-account-id", "private-ipv4", "public-keys/", "ram/", "region-id", "serial-number",
                  "vpc-id", "vswitch-cidr-block", "vswitch-id", "zone-id")


@dataclass
class Answer:
    status: int
    body: str
    content_type: str = "text/plain"


NOT_FOUND = Answer(404, "Not Found")


class MetadataService:
    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (instance id, real expiry)
        self._credentials: dict[tuple[str, str], dict[str, Any]] = {}  # (instance, role) -> record

    def instance_at(self, address: str) -> dict[str, Any] | None:
        return instances.at_address(self.cloud.store, address)

    def answer(self, method: str, path: str, headers: dict[str, str], caller: str) -> Answer:
        """The response to one request from `caller` (its source address); headers in lower case."""
        instance = self.instance_at(caller)
        if instance is None:
            return Answer(403, f"{caller} is not an instance of this cloud.")
        path = "/" + path.split("?", 1)[0].strip("/") + ("/" if path.endswith("/") and path != "/" else "")
        if path == "/latest/api/token":
            return self._issue_token(method, headers, instance) if method == "PUT" else Answer(405, "Use PUT.")
        if method not in ("GET", "HEAD"):
            return Answer(405, "Method Not Allowed")
        token = headers.get(TOKEN_HEADER)
        if token is not None and not self._token_valid(token, instance["InstanceId"]):
            return Answer(401, "Unauthorized: the metadata token is invalid or expired; get a new one with "
                          "PUT /latest/api/token.")
        return self._read(path, instance)

    def _issue_token(self, method: str, headers: dict[str, str], instance: dict[str, Any]) -> Answer:
        if headers.get("x-forwarded-for"):
            # As on ECS: tokens are not handed out through a proxy.
            return Answer(403, "Forbidden")
        try:
            ttl = int(headers.get(TOKEN_TTL_HEADER, ""))
        except ValueError:
            return Answer(400, f"Missing or invalid {TOKEN_TTL_HEADER} (1 to {MAX_TOKEN_TTL} seconds).")
        if not 1 <= ttl <= MAX_TOKEN_TTL:
            return Answer(400, f"{TOKEN_TTL_HEADER} must be 1 to {MAX_TOKEN_TTL} seconds.")
        token = base64.urlsafe_b64encode(secrets.token_bytes(42)).decode()
        now = time.time()
        with self._lock:
            self._tokens = {t: v for t, v in self._tokens.items() if v[1] > now}
            self._tokens[token] = (instance["InstanceId"], now + ttl)
        return Answer(200, token)

    def _token_valid(self, token: str, instance_id: str) -> bool:
        with self._lock:
            owner, expiry = self._tokens.get(token, ("", 0.0))
        return owner == instance_id and expiry > time.time()

    def _read(self, path: str, instance: dict[str, Any]) -> Answer:
        if path in ("/", "/latest/"):
            return Answer(200, "dynamic/\nmeta-data/\nuser-data")
        if path == "/latest/user-data":
            data = instance.get("UserData") or ""
            if not data:
                return NOT_FOUND
            return Answer(200, base64.b64decode(data).decode("utf-8", "replace"))
        if path == "/latest/meta-data/":
            return Answer(200, "\n".join(META_DATA_KEYS))
        key = path.removeprefix("/latest/meta-data/")
        if key == path:
            return NOT_FOUND
        if key.startswith("ram/"):
            return self._ram(key.removeprefix("ram/"), instance)
        if key.startswith("instance/"):
            return self._instance_section(key.removeprefix("instance/"), instance)
        if key.startswith("public-keys/") or key == "public-keys":
            return self._public_keys(key.removeprefix("public-keys").strip("/"), instance)
        value = self._simple(key, instance)
        return NOT_FOUND if value is None else Answer(200, value)

    def _simple(self, key: str, instance: dict[str, Any]) -> str | None:
        vswitch = network.VSWITCH.find(self.cloud.store, instance.get("VSwitchId", "")) or {}
        values = {
            "instance-id": instance["InstanceId"], "region-id": instance["RegionId"], "zone-id": instance["ZoneId"],
            "hostname": instance.get("HostName") or instance["InstanceId"],
            "private-ipv4": instance.get("PrivateIpAddress", ""), "image-id": instance["ImageId"],
            "instance-type": instance["InstanceType"], "vpc-id": instance.get("VpcId", ""),
            "vswitch-id": instance.get("VSwitchId", ""), "vswitch-cidr-block": vswitch.get("CidrBlock", ""),
            "owner-account-id": self.cloud.account_uid, "network-type": "vpc",
            "serial-number": instance["InstanceId"], "mac": _mac(instance.get("PrivateIpAddress", "")),
        }
        value = values.get(key)
        return value if value else None

    def _instance_section(self, key: str, instance: dict[str, Any]) -> Answer:
        if key in ("", "spot/"):
            return Answer(200, "spot/" if key == "" else "termination-time")
        if key == "spot/termination-time":
            when = instances.termination_time(instance, self.cloud.clock)
            return NOT_FOUND if when is None else Answer(200, when)
        if key == "instance-type":
            return Answer(200, instance["InstanceType"])
        return NOT_FOUND

    def _public_keys(self, key: str, instance: dict[str, Any]) -> Answer:
        """The launch's key pair, as ECS gives it to cloud-init: public-keys/0/openssh-key (404 without one)."""
        public_key = key_pairs.public_key(self.cloud.store, instance.get("KeyPairName", ""))
        if public_key is None:
            return NOT_FOUND
        listing = {"": "0/", "0": "openssh-key", "0/openssh-key": public_key}
        return Answer(200, listing[key]) if key in listing else NOT_FOUND

    def _ram(self, key: str, instance: dict[str, Any]) -> Answer:
        role = instance.get("RamRoleName") or ""
        if key in ("", "security-credentials", "security-credentials/"):
            if key == "":
                return Answer(200, "security-credentials/")
            return Answer(200, role) if role else NOT_FOUND
        name = key.removeprefix("security-credentials/")
        if not role or name.lower() != role.lower():
            return NOT_FOUND
        record = self._role_credentials(instance["InstanceId"], role)
        body = {
            "AccessKeyId": record["AccessKeyId"], "AccessKeySecret": record["AccessKeySecret"],
            "SecurityToken": record["SecurityToken"], "Expiration": record["Expiration"],
            "LastUpdated": iso_seconds(record["IssuedEpoch"]), "Code": "Success",
        }
        return Answer(200, json.dumps(body, indent=2), "application/json")

    def _role_credentials(self, instance_id: str, role: str) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            record = self._credentials.get((instance_id, role))
            if record is not None:
                left = record["ExpirationEpoch"] - now
                if left > (record["ExpirationEpoch"] - record["IssuedEpoch"]) * ROLE_REFRESH_FRACTION:
                    return record
            record = credentials.issue_role_credentials(self.cloud.store, role, instance_id, ROLE_CREDENTIAL_SECONDS)
            self._credentials[(instance_id, role)] = record
            return record


def _mac(address: str) -> str:
    """A stable, locally administered MAC derived from the private address."""
    octets = [int(p) for p in address.split(".")] if address.count(".") == 3 else [0, 0, 0, 0]
    return "00:16:3e:" + ":".join(f"{o:02x}" for o in octets[1:])
