#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_ram_policy_attachment
short_description: Attach a RAM policy to a role, or detach it
description:
  - Attaches a custom or system policy to a RAM role; V(absent) detaches it.
  - Detaching what is not attached, or from a role or policy that is gone, changes nothing.
options:
  role_name:
    description: The role.
    type: str
    required: true
  policy_name:
    description: The policy.
    type: str
    required: true
  policy_type:
    description: Whether the policy is one of yours or one of Alibaba's.
    type: str
    choices: [Custom, System]
    default: Custom
  state:
    description: Whether the policy should be attached.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Grant the training role its OSS policy
  alicloud_ram_policy_attachment:
    role_name: ess-lora-deepseek7b-role
    policy_name: ess-lora-deepseek7b-oss
"""

RETURN = r"""
attached:
  description: Whether the policy is attached after the run.
  returned: always
  type: bool
policies:
  description: The policies attached to the role after the run.
  returned: always
  type: list
  elements: dict
"""

from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule, snake  # noqa: E402

GONE = ("EntityNotExist.Role", "EntityNotExist.Policy", "EntityNotExist.Role.Policy")


def attached_policies(module: AlicloudModule, role_name: str) -> list[dict[str, Any]] | None:
    body = module.call("ram", "ListPoliciesForRole", {"RoleName": role_name}, missing_ok=("EntityNotExist.Role",))
    if body is None:
        return None
    return list((body.get("Policies") or {}).get("Policy", []))


def is_attached(policies: list[dict[str, Any]] | None, name: str, policy_type: str) -> bool:
    return any(p["PolicyName"].lower() == name.lower() and p["PolicyType"] == policy_type for p in policies or [])


def main() -> None:
    module = AlicloudModule(
        argument_spec=dict(
            role_name=dict(type="str", required=True),
            policy_name=dict(type="str", required=True),
            policy_type=dict(type="str", default="Custom", choices=["Custom", "System"]),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
    )
    p = module.params
    params = {"RoleName": p["role_name"], "PolicyName": p["policy_name"], "PolicyType": p["policy_type"]}
    policies = attached_policies(module, p["role_name"])
    attached = is_attached(policies, p["policy_name"], p["policy_type"])
    want = p["state"] == "present"
    if want and policies is None:  # in check mode too: an attachment to no role is not something that would work
        module.fail_json(msg=f"The role {p['role_name']} does not exist; create it first (alicloud_ram_role).")
    changed = attached != want
    if changed and want and module.call("ram", "GetPolicy", {"PolicyName": p["policy_name"],
                                                            "PolicyType": p["policy_type"]},
                                        missing_ok=("EntityNotExist.Policy",)) is None:
        module.fail_json(msg=f"The {p['policy_type']} policy {p['policy_name']} does not exist; create it first "
                             "(alicloud_ram_policy).")
    if changed and not module.check_mode:
        if want:
            module.call("ram", "AttachPolicyToRole", params, missing_ok=("EntityAlreadyExists.Role.Policy",))
        else:
            module.call("ram", "DetachPolicyFromRole", params, missing_ok=GONE)
        policies = attached_policies(module, p["role_name"])
    result = {"changed": changed, "attached": want if changed else attached,
              "policies": [snake(x) for x in policies or []]}
    if module._diff:
        result["diff"] = {"before": {"attached": attached}, "after": {"attached": want if changed else attached}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
