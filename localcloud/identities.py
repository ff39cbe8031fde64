"""The records of identities: access keys, STS credentials, RAM roles and RAM policies.

This module owns the `access_key`, `sts_credential`, `ram_role` and `ram_policy` records: the
authenticator, the RAM and STS APIs, localcloud.credentials (which issues the STS credentials) and
the products that name a role read and write them through it. Keys and credentials are keyed by
AccessKeyId, roles by lower(RoleName) and policies by lower("PolicyType:PolicyName"), as RAM's
names are case-insensitive.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError
from .store import Kind, Store

Doc = dict[str, Any]

ACCESS_KEY = Kind("access_key", "AccessKeyId")
STS_CREDENTIAL = Kind("sts_credential", "AccessKeyId")
RAM_ROLE = "ram_role"
RAM_POLICY = "ram_policy"


def policy_key(policy_type: str, name: str) -> str:
    """The one key of a policy, whatever the case of its type and name."""
    return f"{policy_type}:{name}".lower()


def role(store: Store, name: str) -> Doc | None:
    """The RAM role `name` (any case), or None."""
    return store.get(RAM_ROLE, name.lower())


def existing_role(store: Store, name: str) -> Doc:
    """The RAM role `name` (any case); the API error EntityNotExist.Role when there is none."""
    found = role(store, name)
    if found is None:
        raise ApiError("EntityNotExist.Role", f"The role does not exist: {name}.", 404)
    return found


def roles(store: Store) -> list[Doc]:
    """Every RAM role, in creation order."""
    return store.list(RAM_ROLE)


def save_role(store: Store, record: Doc) -> Doc:
    """Create or replace a RAM role."""
    return store.put(RAM_ROLE, record["RoleName"].lower(), record)


def delete_role(store: Store, name: str) -> bool:
    """Remove the RAM role `name`; False when there was none."""
    return store.delete(RAM_ROLE, name.lower())


def policy(store: Store, policy_type: str, name: str) -> Doc | None:
    """The RAM policy of this type (System or Custom) and name, or None."""
    return store.get(RAM_POLICY, policy_key(policy_type, name))


def policies(store: Store) -> list[Doc]:
    """Every RAM policy, in creation order."""
    return store.list(RAM_POLICY)


def save_policy(store: Store, record: Doc) -> Doc:
    """Create or replace a RAM policy."""
    return store.put(RAM_POLICY, policy_key(record["PolicyType"], record["PolicyName"]), record)


def delete_policy(store: Store, policy_type: str, name: str) -> bool:
    """Remove a RAM policy; False when there was none."""
    return store.delete(RAM_POLICY, policy_key(policy_type, name))


def role_policies(store: Store, name: str) -> list[Doc]:
    """The policies attached to the RAM role `name` (none when there is no such role)."""
    found = role(store, name)
    attached = (policy(store, a["PolicyType"], a["PolicyName"]) for a in (found or {}).get("AttachedPolicies", []))
    return [p for p in attached if p]
