"""STS 2015-04-01: temporary credentials for RAM roles (AssumeRole) and GetCallerIdentity.

This module judges who may assume a role; localcloud.credentials issues the credentials.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .. import credentials, identities, policy
from ..auth import Principal
from ..errors import ApiError
from ..registry import Request, action
from . import ram

if TYPE_CHECKING:
    from ..cloud import Cloud

MIN_DURATION_SECONDS = 900

_ROLE_ARN = re.compile(r"^acs:ram::(\d+):role/([A-Za-z0-9.\-]{1,64})$", re.IGNORECASE)
_SESSION_NAME = re.compile(r"^[A-Za-z0-9.@\-_]{2,64}$")


def _credentials_view(record: dict[str, Any]) -> dict[str, str]:
    return {k: record[k] for k in ("AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration")}


def _role_from_arn(cloud: Cloud, arn: str) -> dict[str, Any]:
    match = _ROLE_ARN.match(arn)
    if match is None:
        raise ApiError("InvalidParameter.RoleArn",
                       f"The parameter RoleArn is wrongly formed: {arn!r}; expected acs:ram::<account>:role/<name>.")
    uid, name = match.groups()
    role = identities.role(cloud.store, name)
    if uid != cloud.account_uid or role is None:
        raise ApiError("EntityNotExist.Role", f"The role not exists: {arn}.", 404)
    return role


def _caller_identities(principal: Principal) -> set[str]:
    """Principal values in a trust policy that name the caller; account-wide ones cover every identity."""
    uid = principal.account_uid
    names = {uid, f"acs:ram::{uid}:root"}
    if not principal.is_root:
        names.add(f"acs:ram::{uid}:role/{principal.role_name}".lower())
    return names


def _trusts(role: dict[str, Any], principal: Principal) -> bool:
    """Whether the role's trust policy lets the caller assume it (explicit Deny wins)."""
    identities = _caller_identities(principal)
    document = policy.parse_document(role["AssumeRolePolicyDocument"])
    statements = []
    for statement in document["Statement"]:
        ram_principals = statement.get("Principal", {}).get("RAM", [])
        if isinstance(ram_principals, str):
            ram_principals = [ram_principals]
        if any(p.lower() in identities for p in ram_principals):
            statements.append(statement)
    return policy.is_allowed([{"Statement": statements}], "sts:AssumeRole", role["Arn"])


def _session_policy(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        return policy.parse_document(text)
    except ApiError as err:
        raise ApiError("InvalidParameter.PolicyGrammar",
                       f"The parameter Policy has not passed grammar check: {err.message}") from None


@action("sts", "AssumeRole")
def assume_role(cloud: Cloud, req: Request) -> dict:
    p = req.params
    role = _role_from_arn(cloud, p.str("RoleArn", required=True))
    session_name = p.str("RoleSessionName", required=True)
    if not _SESSION_NAME.match(session_name):
        raise ApiError("InvalidParameter.RoleSessionName",
                       "The parameter RoleSessionName is wrongly formed: 2 to 64 characters of letters, digits "
                       "and . @ - _ are allowed.")
    duration = p.int("DurationSeconds", ram.DEFAULT_SESSION_DURATION)
    if not MIN_DURATION_SECONDS <= duration <= role["MaxSessionDuration"]:
        raise ApiError("InvalidParameter.DurationSeconds",
                       f"The Min/Max value of DurationSeconds is {MIN_DURATION_SECONDS}/"
                       f"{role['MaxSessionDuration']} seconds for this role (its MaxSessionDuration).")
    session_policy = _session_policy(p.str("Policy"))
    # Alibaba refuses AssumeRole with an account's own key; this cloud has no RAM users, so the
    # account key stands for them and is judged by the trust policy like any other caller.
    if not _trusts(role, req.principal):
        raise ApiError("NoPermission",
                       f"You are not authorized to assume this role: {role['Arn']}. Its trust policy "
                       f"(AssumeRolePolicyDocument) does not allow {req.principal.arn}.", 403)
    record = credentials.issue(cloud.store, role, session_name, duration, session_policy)
    return {
        "Credentials": _credentials_view(record),
        "AssumedRoleUser": {"Arn": f"{role['Arn']}/{session_name}",
                            "AssumedRoleId": f"{role['RoleId']}:{session_name}"},
    }


@action("sts", "GetCallerIdentity")
def get_caller_identity(cloud: Cloud, req: Request) -> dict:
    principal = req.principal
    uid = principal.account_uid
    if principal.is_root:
        return {"AccountId": uid, "UserId": uid, "PrincipalId": uid, "Arn": f"acs:ram::{uid}:root",
                "IdentityType": "Account"}
    cred = identities.STS_CREDENTIAL.find(cloud.store, principal.access_key_id) or {}
    role_id = cred.get("RoleId", "")
    return {"AccountId": uid, "RoleId": role_id, "PrincipalId": f"{role_id}:{principal.session_name}",
            "Arn": f"acs:ram::{uid}:assumed-role/{principal.role_name}/{principal.session_name}",
            "IdentityType": "AssumedRoleUser"}
