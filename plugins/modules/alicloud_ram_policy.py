#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_ram_policy
short_description: Manage a custom RAM policy, optionally generated for OSS training access
description:
  - Creates a custom RAM policy, updates its document (a new default version; the oldest
    non-default version is rotated out at the limit of five) and deletes it.
  - With O(oss_access) the document is generated, least privilege, from a bucket and prefixes,
    list the bucket, read under the read prefixes, and read, write and delete under the write
    prefixes; instead of the seed's C(oss:*) on the whole bucket.
  - A document that cannot parse fails before anything is created.
options:
  name:
    description: The policy name (letters, digits and C(-)).
    type: str
    required: true
    aliases: [policy_name]
  policy_document:
    description: The policy, as a JSON string or a dict. Mutually exclusive with O(oss_access).
    type: raw
  oss_access:
    description: Generate the document for a training job's access to one bucket.
    type: dict
    suboptions:
      bucket:
        description: The bucket name.
        type: str
        required: true
      read_prefixes:
        description: Prefixes to read (the model, the datasets).
        type: list
        elements: str
        default: []
      write_prefixes:
        description: Prefixes to read, write and delete under (the training output).
        type: list
        elements: str
        default: [output/]
  agent_access:
    description:
      - With O(oss_access), also allow what the training agent calls besides OSS, on its own resources
        only - C(ecs:DescribeInstances) in the region, to tell whether the instance that holds the
        training lease still exists, and C(cms:PutCustomEvent) (which RAM authorizes on C(*) only), to
        report that training ended.
    type: dict
    suboptions:
      region:
        description: The project's region.
        type: str
        required: true
  group_access:
    description:
      - Generate the document for the training instances' calls on their own scaling group, on that
        group only - see their scale-in (C(ess:DescribeScalingInstances), C(ess:DescribeScalingActivities),
        C(ess:DescribeLifecycleActions)), read how long the hook holds them and ask for more time
        (C(ess:DescribeLifecycleHooks), C(ess:RecordLifecycleActionHeartbeat)), complete their lifecycle
        action (C(ess:CompleteLifecycleAction)) and set the group to 0 instances when training ends
        (C(ess:ModifyScalingGroup)).
      - Mutually exclusive with O(policy_document) and O(oss_access).
    type: dict
    suboptions:
      region:
        description: The group's region.
        type: str
        required: true
      scaling_group_id:
        description: The group's id.
        type: str
        required: true
  description:
    description: The description (set at creation; RAM cannot change it later).
    type: str
  force:
    description: With O(state=absent), delete even while the policy is attached (detaching it).
    type: bool
    default: false
  state:
    description: Whether the policy should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Create the least-privilege OSS policy of the training instances
  alicloud_ram_policy:
    name: ess-lora-deepseek7b-oss
    oss_access:
      bucket: ess-lora-deepseek7b-data
      read_prefixes: [DeepSeek-R1-Distill-Qwen-7B/, alpaca-gpt4-data-zh/, alpaca-gpt4-data-en/, self-cognition/]
      write_prefixes: [output/]
    agent_access:
      region: cn-hangzhou

- name: Create a policy from a document
  alicloud_ram_policy:
    name: read-logs
    policy_document: "{{ lookup('ansible.builtin.file', 'read-logs.json') }}"
"""

RETURN = r"""
policy:
  description: The policy (empty when absent).
  returned: always
  type: dict
  contains:
    policy_name: {description: The name., type: str}
    policy_type: {description: Always C(Custom)., type: str}
    default_version: {description: The default version id., type: str, sample: v2}
    policy_document: {description: The default version's document (JSON)., type: str}
document:
  description: The document the module wanted (generated from O(oss_access) or given).
  returned: when state is present
  type: dict
"""

from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_policy import (  # noqa: E402
    PolicyError,
    dumps,
    oss_training_policy,
    parse_policy,
    same_policy,
    scaling_group_policy,
    training_agent_statements,
)

MISSING = ("EntityNotExist.Policy",)


def get_policy(module: AlicloudModule, name: str) -> dict[str, Any] | None:
    body = module.call("ram", "GetPolicy", {"PolicyName": name, "PolicyType": "Custom"}, missing_ok=MISSING)
    if not body:
        return None
    policy = dict(body["Policy"])
    policy.setdefault("PolicyDocument", (body.get("DefaultPolicyVersion") or {}).get("PolicyDocument"))
    return policy


def wanted_document(params: dict[str, Any]) -> dict[str, Any]:
    if params.get("oss_access"):
        access = params["oss_access"]
        document = oss_training_policy(access["bucket"], access["read_prefixes"], access["write_prefixes"])
        if params.get("agent_access"):
            document["Statement"] += training_agent_statements(params["agent_access"]["region"])
        return document
    if params.get("agent_access"):
        raise PolicyError("agent_access goes with oss_access (it adds to the generated document).")
    if params.get("group_access"):
        return scaling_group_policy(params["group_access"]["region"], params["group_access"]["scaling_group_id"])
    if params.get("policy_document") is None:
        raise PolicyError("Give policy_document, oss_access or group_access.")
    return parse_policy(params["policy_document"])


def ensure_present(module: AlicloudModule, policy: dict[str, Any] | None,
                   document: dict[str, Any]) -> tuple[bool, Any]:
    name = module.params["name"]
    if policy is None:
        if module.check_mode:
            return True, {"PolicyName": name, "PolicyType": "Custom", "PolicyDocument": dumps(document)}
        module.call("ram", "CreatePolicy", {"PolicyName": name, "PolicyDocument": dumps(document),
                                            "Description": module.params.get("description")})
        return True, get_policy(module, name)
    if same_policy(policy.get("PolicyDocument") or "{}", document):
        return False, policy
    if module.check_mode:
        return True, {**policy, "PolicyDocument": dumps(document)}
    module.call("ram", "CreatePolicyVersion", {
        "PolicyName": name, "PolicyDocument": dumps(document), "SetAsDefault": True,
        "RotateStrategy": "DeleteOldestNonDefaultVersionWhenLimitExceeded"})
    return True, get_policy(module, name)


def ensure_absent(module: AlicloudModule, policy: dict[str, Any] | None) -> bool:
    if policy is None:
        return False
    if module.check_mode:
        return True
    name = policy["PolicyName"]
    body = module.call("ram", "ListPolicyVersions", {"PolicyName": name, "PolicyType": "Custom"},
                       missing_ok=MISSING) or {}
    for version in (body.get("PolicyVersions") or {}).get("PolicyVersion", []):
        if not version.get("IsDefaultVersion"):
            module.call("ram", "DeletePolicyVersion", {"PolicyName": name, "VersionId": version["VersionId"]},
                        missing_ok=(*MISSING, "EntityNotExist.Policy.Version"))
    if not module.params["force"] and policy.get("AttachmentCount"):
        module.fail_json(msg=f"The policy {name} is still attached ({policy['AttachmentCount']} attachment(s)); "
                             "detach it first (alicloud_ram_policy_attachment state=absent) or set force=true.")
    module.call("ram", "DeletePolicy", {"PolicyName": name, "CascadingDelete": module.params["force"] or None},
                missing_ok=MISSING)
    return True


def main() -> None:
    module = AlicloudModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["policy_name"]),
            policy_document=dict(type="raw"),
            oss_access=dict(type="dict", options=dict(
                bucket=dict(type="str", required=True),
                read_prefixes=dict(type="list", elements="str", default=[]),
                write_prefixes=dict(type="list", elements="str", default=["output/"]),
            )),
            agent_access=dict(type="dict", options=dict(region=dict(type="str", required=True))),
            group_access=dict(type="dict", options=dict(region=dict(type="str", required=True),
                                                        scaling_group_id=dict(type="str", required=True))),
            description=dict(type="str"),
            force=dict(type="bool", default=False),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        mutually_exclusive=[["policy_document", "oss_access", "group_access"]],
    )
    document = None
    if module.params["state"] == "present":
        try:
            document = wanted_document(module.params)
        except PolicyError as err:
            module.fail_json(msg=str(err))
    before = get_policy(module, module.params["name"])
    if module.params["state"] == "absent":
        module.exit_resource(ensure_absent(module, before), "policy", before, None)
    changed, after = ensure_present(module, before, document)
    module.exit_resource(changed, "policy", before, after, document=document)


if __name__ == "__main__":
    main()
