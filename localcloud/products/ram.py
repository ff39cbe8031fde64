"""RAM 2015-05-01: roles, policies (with versions) and the attachments between them.

Records (owned by localcloud.identities): `ram_role` keyed lower(RoleName), `ram_policy` keyed
lower(f"{PolicyType}:{PolicyName}") with the default version's document parsed under "Document",
which is what authorization (localcloud.auth) reads. RAM names are case-insensitive, as on Alibaba.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from typing import TYPE_CHECKING, Any

from .. import identities, policy
from ..clock import iso_seconds
from ..errors import ApiError
from ..params import Params
from ..registry import Request, action

if TYPE_CHECKING:
    from ..cloud import Cloud

POLICY_TYPES = ("System", "Custom")
MAX_POLICY_VERSIONS = 5
DEFAULT_SESSION_DURATION = 3600

# Alibaba's system policies the project's playbooks and tests attach; seeded on first use of RAM.
# Bump SYSTEM_POLICIES_VERSION when the list changes so existing state dirs get the new ones.
SYSTEM_POLICIES_VERSION = 1
SYSTEM_POLICIES: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "AdministratorAccess": ("Full access to every cloud resource.",
                            [{"Action": "*", "Effect": "Allow", "Resource": "*"}]),
    "AliyunOSSFullAccess": ("Full access to Object Storage Service (OSS).",
                            [{"Action": "oss:*", "Effect": "Allow", "Resource": "*"}]),
    "AliyunOSSReadOnlyAccess": ("Read-only access to Object Storage Service (OSS).",
                                [{"Action": ["oss:Get*", "oss:List*"], "Effect": "Allow", "Resource": "*"}]),
    "AliyunECSFullAccess": ("Full access to Elastic Compute Service (ECS).",
                            [{"Action": "ecs:*", "Effect": "Allow", "Resource": "*"},
                             {"Action": ["vpc:Describe*", "vpc:List*"], "Effect": "Allow", "Resource": "*"}]),
    "AliyunVPCFullAccess": ("Full access to Virtual Private Cloud (VPC).",
                            [{"Action": "vpc:*", "Effect": "Allow", "Resource": "*"}]),
    "AliyunESSFullAccess": ("Full access to Auto Scaling (ESS).",
                            [{"Action": "ess:*", "Effect": "Allow", "Resource": "*"}]),
    "AliyunRAMReadOnlyAccess": ("Read-only access to Resource Access Management (RAM).",
                                [{"Action": ["ram:Get*", "ram:List*"], "Effect": "Allow", "Resource": "*"}]),
    "AliyunSTSAssumeRoleAccess": ("Permission to call AssumeRole of Security Token Service (STS).",
                                  [{"Action": "sts:AssumeRole", "Effect": "Allow", "Resource": "*"}]),
}

_ROLE_NAME = re.compile(r"^[A-Za-z0-9.\-]+$")
_POLICY_NAME = re.compile(r"^[A-Za-z0-9\-]+$")


# -- helpers ---------------------------------------------------------------------------------
def _now(cloud: Cloud) -> str:
    return iso_seconds(cloud.clock.now())


def role_arn(cloud: Cloud, role_name: str) -> str:
    """Alibaba writes role ARNs with the name in lower case."""
    return f"acs:ram::{cloud.account_uid}:role/{role_name.lower()}"


def _check_name(value: str, what: str, pattern: re.Pattern[str], max_len: int) -> str:
    if len(value) > max_len:
        raise ApiError(f"InvalidParameter.{what}.Length",
                       f"The length of {what} must be 1 to {max_len} characters; got {len(value)}.")
    if not pattern.match(value):
        raise ApiError(f"InvalidParameter.{what}.InvalidChars",
                       f"The specified {what} {value!r} contains invalid characters.")
    return value


def _role_name(params: Params, name: str = "RoleName") -> str:
    return _check_name(params.str(name, required=True), "RoleName", _ROLE_NAME, 64)


def _description(params: Params, name: str = "Description") -> str | None:
    value = params.str(name)
    if value is not None and len(value) > 1024:
        raise ApiError("InvalidParameter.Description.Length", "The description must be at most 1024 characters.")
    return value


def _trust_document(text: str) -> str:
    """Validate a trust policy (as RAM does on CreateRole/UpdateRole) and keep it as given."""
    doc = policy.parse_document(text)
    for statement in doc["Statement"]:
        if "Principal" not in statement:
            raise ApiError("MalformedPolicyDocument",
                           "Each statement of a role's trust policy needs a \"Principal\".")
    return text


def _page(items: list[dict], key: str, params: Params) -> tuple[list[dict], dict[str, Any]]:
    """RAM's Marker/MaxItems paging; the marker is the key of the first item of the next page."""
    max_items = params.int("MaxItems", 100, minimum=1, maximum=1000)
    marker = params.str("Marker")
    start = 0
    if marker:
        keys = [item[key].lower() for item in items]
        if marker.lower() not in keys:
            raise ApiError("InvalidParameter.Marker", f"The specified Marker {marker!r} is not valid.")
        start = keys.index(marker.lower())
    page = items[start:start + max_items]
    rest = items[start + max_items:]
    if rest:
        return page, {"IsTruncated": True, "Marker": rest[0][key]}
    return page, {"IsTruncated": False}


# -- roles -----------------------------------------------------------------------------------
def _role_view(role: dict[str, Any], *, with_document: bool = True) -> dict[str, Any]:
    view = {k: role[k] for k in ("RoleId", "RoleName", "Arn", "Description", "MaxSessionDuration",
                                 "CreateDate", "UpdateDate")}
    if with_document:
        view["AssumeRolePolicyDocument"] = role["AssumeRolePolicyDocument"]
    return view


def _session_duration(params: Params, name: str) -> int | None:
    return params.int(name, minimum=3600, maximum=43200)


@action("ram", "CreateRole")
def create_role(cloud: Cloud, req: Request) -> dict:
    p = req.params
    name = _role_name(p)
    document = _trust_document(p.str("AssumeRolePolicyDocument", required=True))
    description = _description(p) or ""
    duration = _session_duration(p, "MaxSessionDuration") or DEFAULT_SESSION_DURATION
    if identities.role(cloud.store, name) is not None:
        raise ApiError("EntityAlreadyExists.Role", f"The role already exists: {name}.", 409)
    now = _now(cloud)
    role = {
        "RoleId": "3" + "".join(secrets.choice(string.digits) for _ in range(18)),
        "RoleName": name, "Arn": role_arn(cloud, name), "Description": description,
        "AssumeRolePolicyDocument": document, "MaxSessionDuration": duration,
        "CreateDate": now, "UpdateDate": now, "AttachedPolicies": [],
    }
    identities.save_role(cloud.store, role)
    return {"Role": _role_view(role)}


@action("ram", "GetRole")
def get_role_action(cloud: Cloud, req: Request) -> dict:
    return {"Role": _role_view(identities.existing_role(cloud.store, _role_name(req.params)))}


@action("ram", "ListRoles")
def list_roles(cloud: Cloud, req: Request) -> dict:
    roles = sorted(identities.roles(cloud.store), key=lambda r: r["RoleName"].lower())
    page, paging = _page(roles, "RoleName", req.params)
    return {"Roles": {"Role": [_role_view(r, with_document=False) for r in page]}, **paging}


@action("ram", "UpdateRole")
def update_role(cloud: Cloud, req: Request) -> dict:
    p = req.params
    role = identities.existing_role(cloud.store, _role_name(p))
    document = p.str("NewAssumeRolePolicyDocument")
    if document is not None:
        role["AssumeRolePolicyDocument"] = _trust_document(document)
    description = _description(p, "NewDescription")
    if description is not None:
        role["Description"] = description
    duration = _session_duration(p, "NewMaxSessionDuration")
    if duration is not None:
        role["MaxSessionDuration"] = duration
    role["UpdateDate"] = _now(cloud)
    identities.save_role(cloud.store, role)
    return {"Role": _role_view(role)}


@action("ram", "DeleteRole")
def delete_role(cloud: Cloud, req: Request) -> dict:
    role = identities.existing_role(cloud.store, _role_name(req.params))
    if role["AttachedPolicies"]:
        raise ApiError("DeleteConflict.Role.Policy",
                       f"The role {role['RoleName']} cannot be deleted while policies are attached to it; "
                       "detach them first (DetachPolicyFromRole).", 409)
    identities.delete_role(cloud.store, role["RoleName"])
    return {}


# -- policies --------------------------------------------------------------------------------
def _seed_system_policies(cloud: Cloud) -> None:
    if cloud.store.kv_get("ram_system_policies") == SYSTEM_POLICIES_VERSION:
        return
    now = _now(cloud)
    for name, (description, statements) in SYSTEM_POLICIES.items():
        if identities.policy(cloud.store, "System", name) is None:
            text = json.dumps({"Version": "1", "Statement": statements})
            identities.save_policy(cloud.store, _new_policy(name, "System", description, text, now))
    cloud.store.kv_put("ram_system_policies", SYSTEM_POLICIES_VERSION)


def _new_policy(name: str, policy_type: str, description: str, text: str, now: str) -> dict[str, Any]:
    return {
        "PolicyName": name, "PolicyType": policy_type, "Description": description,
        "Document": policy.parse_document(text), "DefaultVersion": "v1", "NextVersion": 2,
        "Versions": [{"VersionId": "v1", "PolicyDocument": text, "CreateDate": now}],
        "CreateDate": now, "UpdateDate": now,
    }


def _policy_name(params: Params) -> str:
    return _check_name(params.str("PolicyName", required=True), "PolicyName", _POLICY_NAME, 128)


def _policy_type(params: Params) -> str:
    return params.str("PolicyType", required=True, choices=POLICY_TYPES)


def get_policy(cloud: Cloud, policy_type: str, name: str) -> dict[str, Any]:
    _seed_system_policies(cloud)
    found = identities.policy(cloud.store, policy_type, name)
    if found is None:
        raise ApiError("EntityNotExist.Policy", f"The policy does not exist: {policy_type} {name}.", 404)
    return found


def _attachment_count(cloud: Cloud, pol: dict[str, Any]) -> int:
    key = identities.policy_key(pol["PolicyType"], pol["PolicyName"])
    return sum(1 for role in identities.roles(cloud.store)
               for a in role["AttachedPolicies"] if identities.policy_key(a["PolicyType"], a["PolicyName"]) == key)


def _policy_view(cloud: Cloud, pol: dict[str, Any]) -> dict[str, Any]:
    view = {k: pol[k] for k in ("PolicyName", "PolicyType", "Description", "DefaultVersion", "CreateDate",
                                "UpdateDate")}
    view["AttachmentCount"] = _attachment_count(cloud, pol)
    return view


def _version_view(pol: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    return {**version, "IsDefaultVersion": version["VersionId"] == pol["DefaultVersion"]}


def _find_version(pol: dict[str, Any], version_id: str) -> dict[str, Any]:
    for version in pol["Versions"]:
        if version["VersionId"] == version_id:
            return version
    raise ApiError("EntityNotExist.Policy.Version",
                   f"The policy version does not exist: {pol['PolicyName']} {version_id}.", 404)


def _save_policy(cloud: Cloud, pol: dict[str, Any]) -> None:
    pol["UpdateDate"] = _now(cloud)
    identities.save_policy(cloud.store, pol)


def _custom_policy(cloud: Cloud, params: Params) -> dict[str, Any]:
    return get_policy(cloud, "Custom", _policy_name(params))


@action("ram", "CreatePolicy")
def create_policy(cloud: Cloud, req: Request) -> dict:
    p = req.params
    name = _policy_name(p)
    text = p.str("PolicyDocument", required=True)
    description = _description(p) or ""
    _seed_system_policies(cloud)
    if identities.policy(cloud.store, "Custom", name) is not None:
        raise ApiError("EntityAlreadyExists.Policy", f"The policy already exists: {name}.", 409)
    pol = _new_policy(name, "Custom", description, text, _now(cloud))
    identities.save_policy(cloud.store, pol)
    return {"Policy": {k: pol[k] for k in ("PolicyName", "PolicyType", "Description", "DefaultVersion",
                                           "CreateDate")}}


@action("ram", "GetPolicy")
def get_policy_action(cloud: Cloud, req: Request) -> dict:
    pol = get_policy(cloud, _policy_type(req.params), _policy_name(req.params))
    default = _find_version(pol, pol["DefaultVersion"])
    return {"Policy": {**_policy_view(cloud, pol), "PolicyDocument": default["PolicyDocument"]},
            "DefaultPolicyVersion": _version_view(pol, default)}


@action("ram", "ListPolicies")
def list_policies(cloud: Cloud, req: Request) -> dict:
    _seed_system_policies(cloud)
    wanted = req.params.str("PolicyType", choices=POLICY_TYPES)
    found = [pol for pol in identities.policies(cloud.store) if wanted in (None, pol["PolicyType"])]
    found.sort(key=lambda pol: (pol["PolicyType"], pol["PolicyName"].lower()))
    page, paging = _page(found, "PolicyName", req.params)
    return {"Policies": {"Policy": [_policy_view(cloud, pol) for pol in page]}, **paging}


@action("ram", "DeletePolicy")
def delete_policy(cloud: Cloud, req: Request) -> dict:
    pol = _custom_policy(cloud, req.params)
    cascading = req.params.bool("CascadingDelete", False)
    if not cascading and _attachment_count(cloud, pol):
        raise ApiError("DeleteConflict.Policy.Attachment",
                       f"The policy {pol['PolicyName']} is still attached; detach it first or set "
                       "CascadingDelete=true.", 409)
    if not cascading and len(pol["Versions"]) > 1:
        raise ApiError("DeleteConflict.Policy.Version",
                       f"The policy {pol['PolicyName']} has non-default versions; delete them first "
                       "(DeletePolicyVersion) or set CascadingDelete=true.", 409)
    key = identities.policy_key("Custom", pol["PolicyName"])
    for role in identities.roles(cloud.store):
        kept = [a for a in role["AttachedPolicies"] if identities.policy_key(a["PolicyType"], a["PolicyName"]) != key]
        if len(kept) != len(role["AttachedPolicies"]):
            role["AttachedPolicies"] = kept
            identities.save_role(cloud.store, role)
    identities.delete_policy(cloud.store, "Custom", pol["PolicyName"])
    return {}


# -- policy versions -------------------------------------------------------------------------
@action("ram", "CreatePolicyVersion")
def create_policy_version(cloud: Cloud, req: Request) -> dict:
    p = req.params
    pol = _custom_policy(cloud, p)
    text = p.str("PolicyDocument", required=True)
    document = policy.parse_document(text)
    rotate = p.str("RotateStrategy", "None", choices=("None", "DeleteOldestNonDefaultVersionWhenLimitExceeded"))
    if len(pol["Versions"]) >= MAX_POLICY_VERSIONS:
        if rotate == "None":
            raise ApiError("LimitExceeded.Policy.Version",
                           f"The policy {pol['PolicyName']} already has {MAX_POLICY_VERSIONS} versions; delete one "
                           "or set RotateStrategy=DeleteOldestNonDefaultVersionWhenLimitExceeded.", 409)
        oldest = next(v for v in pol["Versions"] if v["VersionId"] != pol["DefaultVersion"])
        pol["Versions"].remove(oldest)
    version = {"VersionId": f"v{pol['NextVersion']}", "PolicyDocument": text, "CreateDate": _now(cloud)}
    pol["NextVersion"] += 1
    pol["Versions"].append(version)
    if p.bool("SetAsDefault", False):
        pol["DefaultVersion"], pol["Document"] = version["VersionId"], document
    _save_policy(cloud, pol)
    return {"PolicyVersion": _version_view(pol, version)}


@action("ram", "ListPolicyVersions")
def list_policy_versions(cloud: Cloud, req: Request) -> dict:
    pol = get_policy(cloud, _policy_type(req.params), _policy_name(req.params))
    versions = [_version_view(pol, v) for v in reversed(pol["Versions"])]
    return {"PolicyVersions": {"PolicyVersion": versions}}


@action("ram", "GetPolicyVersion")
def get_policy_version(cloud: Cloud, req: Request) -> dict:
    pol = get_policy(cloud, _policy_type(req.params), _policy_name(req.params))
    version = _find_version(pol, req.params.str("VersionId", required=True))
    return {"PolicyVersion": _version_view(pol, version)}


@action("ram", "SetDefaultPolicyVersion")
def set_default_policy_version(cloud: Cloud, req: Request) -> dict:
    pol = _custom_policy(cloud, req.params)
    version = _find_version(pol, req.params.str("VersionId", required=True))
    pol["DefaultVersion"], pol["Document"] = version["VersionId"], policy.parse_document(version["PolicyDocument"])
    _save_policy(cloud, pol)
    return {}


@action("ram", "DeletePolicyVersion")
def delete_policy_version(cloud: Cloud, req: Request) -> dict:
    pol = _custom_policy(cloud, req.params)
    version = _find_version(pol, req.params.str("VersionId", required=True))
    if version["VersionId"] == pol["DefaultVersion"]:
        raise ApiError("DeleteConflict.PolicyVersion.Default",
                       "The default version of a policy cannot be deleted; make another version the default "
                       "first (SetDefaultPolicyVersion).", 409)
    pol["Versions"].remove(version)
    _save_policy(cloud, pol)
    return {}


# -- attachments -----------------------------------------------------------------------------
def _attachment_target(cloud: Cloud, params: Params) -> tuple[dict[str, Any], dict[str, Any]]:
    role = identities.existing_role(cloud.store, _role_name(params))
    return role, get_policy(cloud, _policy_type(params), _policy_name(params))


def _is_attached(role: dict[str, Any], pol: dict[str, Any]) -> bool:
    key = identities.policy_key(pol["PolicyType"], pol["PolicyName"])
    return any(identities.policy_key(a["PolicyType"], a["PolicyName"]) == key for a in role["AttachedPolicies"])


@action("ram", "AttachPolicyToRole")
def attach_policy_to_role(cloud: Cloud, req: Request) -> dict:
    role, pol = _attachment_target(cloud, req.params)
    if _is_attached(role, pol):
        raise ApiError("EntityAlreadyExists.Role.Policy",
                       f"The policy {pol['PolicyName']} is already attached to the role {role['RoleName']}.", 409)
    role["AttachedPolicies"].append({"PolicyType": pol["PolicyType"], "PolicyName": pol["PolicyName"],
                                     "AttachDate": _now(cloud)})
    identities.save_role(cloud.store, role)
    return {}


@action("ram", "DetachPolicyFromRole")
def detach_policy_from_role(cloud: Cloud, req: Request) -> dict:
    role, pol = _attachment_target(cloud, req.params)
    if not _is_attached(role, pol):
        raise ApiError("EntityNotExist.Role.Policy",
                       f"The policy {pol['PolicyName']} is not attached to the role {role['RoleName']}.", 404)
    key = identities.policy_key(pol["PolicyType"], pol["PolicyName"])
    role["AttachedPolicies"] = [a for a in role["AttachedPolicies"]
                                if identities.policy_key(a["PolicyType"], a["PolicyName"]) != key]
    identities.save_role(cloud.store, role)
    return {}


@action("ram", "ListPoliciesForRole")
def list_policies_for_role(cloud: Cloud, req: Request) -> dict:
    role = identities.existing_role(cloud.store, _role_name(req.params))
    found = []
    for attachment in role["AttachedPolicies"]:
        pol = identities.policy(cloud.store, attachment["PolicyType"], attachment["PolicyName"])
        if pol is not None:
            found.append({"PolicyName": pol["PolicyName"], "PolicyType": pol["PolicyType"],
                          "Description": pol["Description"], "DefaultVersion": pol["DefaultVersion"],
                          "AttachDate": attachment.get("AttachDate", "")})
    return {"Policies": {"Policy": found}}
