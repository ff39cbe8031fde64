#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_ram_role
short_description: Manage a RAM role and its trust policy
description:
  - Creates, updates and deletes a RAM role. By default the role trusts ECS
    (C(ecs.aliyuncs.com)), so instances can take its credentials from the metadata service.
  - Idempotent, the trust policy is compared in a canonical form, so key order and single
    strings versus lists make no difference.
options:
  name:
    description: The role name (letters, digits, C(.) and C(-); case-insensitive on Alibaba Cloud).
    type: str
    required: true
    aliases: [role_name]
  trusted_services:
    description:
      - Cloud services allowed to assume the role. Ignored when O(assume_role_policy_document) is given.
    type: list
    elements: str
    default: [ecs.aliyuncs.com]
  assume_role_policy_document:
    description: A full trust policy (JSON string or dict) instead of O(trusted_services).
    type: raw
  description:
    description: The role's description.
    type: str
  max_session_duration:
    description: Longest STS session, in seconds (3600-43200).
    type: int
  state:
    description:
      - V(absent) detaches every policy from the role and deletes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Create the training instances' RAM role (trusts ECS)
  alicloud_ram_role:
    name: ess-lora-deepseek7b-role
    description: Role of the fine-tuning instances

- name: Delete the role
  alicloud_ram_role:
    name: ess-lora-deepseek7b-role
    state: absent
"""

RETURN = r"""
role:
  description: The role as RAM describes it (empty when absent).
  returned: always
  type: dict
  contains:
    role_name: {description: The name., type: str, sample: ess-lora-deepseek7b-role}
    arn: {description: The ARN., type: str, sample: "acs:ram::1234567890123456:role/ess-lora-deepseek7b-role"}
    role_id: {description: The id., type: str}
    assume_role_policy_document: {description: The trust policy (JSON)., type: str}
    description: {description: The description., type: str}
    max_session_duration: {description: Longest session in seconds., type: int}
"""

from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_policy import (  # noqa: E402
    PolicyError,
    dumps,
    parse_policy,
    same_policy,
    trust_policy,
)

MISSING = ("EntityNotExist.Role",)


def get_role(module: AlicloudModule, name: str) -> dict[str, Any] | None:
    body = module.call("ram", "GetRole", {"RoleName": name}, missing_ok=MISSING)
    return body["Role"] if body else None


def wanted_trust(params: dict[str, Any]) -> dict[str, Any]:
    if params.get("assume_role_policy_document") is not None:
        return parse_policy(params["assume_role_policy_document"], "trust policy")
    return trust_policy(params["trusted_services"])


def role_changes(role: dict[str, Any], params: dict[str, Any], trust: dict[str, Any]) -> dict[str, Any]:
    """The UpdateRole parameters that bring `role` to what the options ask for."""
    changes: dict[str, Any] = {}
    if not same_policy(role.get("AssumeRolePolicyDocument") or "{}", trust):
        changes["NewAssumeRolePolicyDocument"] = dumps(trust)
    if params.get("description") is not None and params["description"] != (role.get("Description") or ""):
        changes["NewDescription"] = params["description"]
    duration = params.get("max_session_duration")
    if duration is not None and duration != role.get("MaxSessionDuration"):
        changes["NewMaxSessionDuration"] = duration
    return changes


def ensure_present(module: AlicloudModule, role: dict[str, Any] | None, trust: dict[str, Any]) -> tuple[bool, Any]:
    params = module.params
    if role is None:
        if module.check_mode:
            return True, {"RoleName": params["name"], "AssumeRolePolicyDocument": dumps(trust),
                          "Description": params.get("description") or ""}
        module.call("ram", "CreateRole", {
            "RoleName": params["name"], "AssumeRolePolicyDocument": dumps(trust),
            "Description": params.get("description"), "MaxSessionDuration": params.get("max_session_duration"),
        })
        return True, get_role(module, params["name"])
    changes = role_changes(role, params, trust)
    if not changes:
        return False, role
    if module.check_mode:
        return True, {**role, **{k.removeprefix("New"): v for k, v in changes.items()}}
    module.call("ram", "UpdateRole", {"RoleName": role["RoleName"], **changes})
    return True, get_role(module, params["name"])


def ensure_absent(module: AlicloudModule, role: dict[str, Any] | None) -> bool:
    if role is None:
        return False
    if module.check_mode:
        return True
    body = module.call("ram", "ListPoliciesForRole", {"RoleName": role["RoleName"]}, missing_ok=MISSING) or {}
    for policy in (body.get("Policies") or {}).get("Policy", []):
        module.call("ram", "DetachPolicyFromRole", {"RoleName": role["RoleName"], "PolicyName": policy["PolicyName"],
                                                    "PolicyType": policy["PolicyType"]},
                    missing_ok=("EntityNotExist.Role.Policy",))
    module.call("ram", "DeleteRole", {"RoleName": role["RoleName"]}, missing_ok=MISSING)
    return True


def main() -> None:
    module = AlicloudModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["role_name"]),
            trusted_services=dict(type="list", elements="str", default=["ecs.aliyuncs.com"]),
            assume_role_policy_document=dict(type="raw"),
            description=dict(type="str"),
            max_session_duration=dict(type="int"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
    )
    try:
        trust = wanted_trust(module.params)
    except PolicyError as err:
        module.fail_json(msg=str(err))
    duration = module.params.get("max_session_duration")
    if duration is not None and not 3600 <= duration <= 43200:
        module.fail_json(msg=f"max_session_duration must be between 3600 and 43200 seconds; got {duration}.")
    before = get_role(module, module.params["name"])
    if module.params["state"] == "absent":
        changed = ensure_absent(module, before)
        module.exit_resource(changed, "role", before, None)
    changed, after = ensure_present(module, before, trust)
    module.exit_resource(changed, "role", before, after)


if __name__ == "__main__":
    main()
