"""The describe -> compare -> act helpers of the modules, with a mocked client, in and out of check mode."""

from __future__ import annotations

import pytest
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_policy import dumps, trust_policy
from ansible_collections.spotfirst.finetune.plugins.modules import (
    alicloud_ecs_instance,
    alicloud_oss_bucket,
    alicloud_ram_policy,
    alicloud_ram_role,
    alicloud_scaling_configuration,
    alicloud_scaling_group,
    alicloud_security_group,
    alicloud_vpc,
)

from .conftest import Failed

CHECK_MODE = pytest.mark.parametrize("check_mode", [False, True], ids=["apply", "check"])
ECS_TRUST = dumps(trust_policy(["ecs.aliyuncs.com"]))


def role_params(**overrides):
    params = {"name": "trainer", "trusted_services": ["ecs.aliyuncs.com"], "assume_role_policy_document": None,
              "description": None, "max_session_duration": None, "state": "present"}
    return {**params, **overrides}


@CHECK_MODE
def test_ram_role_is_created_unless_check_mode(fake_module, check_mode):
    module = fake_module(role_params(), check_mode, {"GetRole": {"Role": {"RoleName": "trainer"}}})
    changed, after = alicloud_ram_role.ensure_present(module, None, trust_policy(["ecs.aliyuncs.com"]))
    assert changed and after["RoleName"] == "trainer"
    assert ("CreateRole" in module.actions()) is not check_mode


@CHECK_MODE
def test_ram_role_unchanged_makes_no_call(fake_module, check_mode):
    role = {"RoleName": "trainer", "AssumeRolePolicyDocument": ECS_TRUST, "Description": ""}
    module = fake_module(role_params(), check_mode)
    changed, _ = alicloud_ram_role.ensure_present(module, role, trust_policy(["ecs.aliyuncs.com"]))
    assert not changed and module.calls == []


@CHECK_MODE
def test_ram_role_trust_and_description_are_updated_in_place(fake_module, check_mode):
    role = {"RoleName": "trainer", "AssumeRolePolicyDocument": ECS_TRUST, "Description": "old"}
    module = fake_module(role_params(description="new", trusted_services=["ecs.aliyuncs.com", "ess.aliyuncs.com"]),
                         check_mode, {"GetRole": {"Role": role}})
    changed, after = alicloud_ram_role.ensure_present(module, role, trust_policy(["ecs.aliyuncs.com",
                                                                                  "ess.aliyuncs.com"]))
    assert changed
    if check_mode:
        assert module.calls == [] and after["Description"] == "new"
    else:
        update = next(p for _, a, p in module.calls if a == "UpdateRole")
        assert update["NewDescription"] == "new" and "ess.aliyuncs.com" in update["NewAssumeRolePolicyDocument"]


@CHECK_MODE
def test_deleting_a_role_detaches_its_policies_first(fake_module, check_mode):
    module = fake_module({}, check_mode, {"ListPoliciesForRole": {"Policies": {"Policy": [
        {"PolicyName": "p", "PolicyType": "Custom"}]}}})
    assert alicloud_ram_role.ensure_absent(module, {"RoleName": "trainer"})
    assert module.actions() == ([] if check_mode else ["ListPoliciesForRole", "DetachPolicyFromRole", "DeleteRole"])


def test_deleting_a_missing_role_changes_nothing(fake_module):
    module = fake_module({})
    assert not alicloud_ram_role.ensure_absent(module, None) and module.calls == []


@CHECK_MODE
def test_changed_policy_gets_a_new_default_version(fake_module, check_mode):
    policy = {"PolicyName": "p", "PolicyDocument": dumps({"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}]})}
    wanted = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:ListObjects", "Resource": "*"}]}
    module = fake_module({"name": "p", "description": None}, check_mode, {"GetPolicy": {"Policy": policy}})
    changed, _ = alicloud_ram_policy.ensure_present(module, policy, wanted)
    assert changed
    versions = [p for _, a, p in module.calls if a == "CreatePolicyVersion"]
    assert versions == ([] if check_mode else [{"PolicyName": "p", "PolicyDocument": dumps(wanted),
                                                "SetAsDefault": True,
                                                "RotateStrategy": "DeleteOldestNonDefaultVersionWhenLimitExceeded"}])


def test_attached_policy_is_not_deleted_without_force(fake_module):
    module = fake_module({"force": False}, answers={"ListPolicyVersions": {}})
    with pytest.raises(Failed, match="still attached"):
        alicloud_ram_policy.ensure_absent(module, {"PolicyName": "p", "AttachmentCount": 1})
    assert "DeletePolicy" not in module.actions()


@CHECK_MODE
def test_vpc_description_and_cidr_are_updated_in_place(fake_module, check_mode):
    vpc = {"VpcId": "vpc-1", "VpcName": "net", "CidrBlock": "172.16.0.0/12", "Description": ""}
    module = fake_module({"name": "net", "cidr_block": "172.16.0.0/12", "description": "d"}, check_mode,
                         {"DescribeVpcs": {"Vpcs": {"Vpc": [vpc]}}})
    changed, _ = alicloud_vpc.ensure_present(module, vpc)
    assert changed
    assert ("ModifyVpcAttribute" in module.actions()) is not check_mode


def test_security_group_rules_are_compared_whatever_their_spelling():
    current = [{"IpProtocol": "TCP", "PortRange": "22/22", "SourceCidrIp": "0.0.0.0/0", "Policy": "Accept",
                "Priority": "1", "SecurityGroupRuleId": "sgr-1"},
               {"IpProtocol": "UDP", "PortRange": "53/53", "SourceCidrIp": "10.0.0.0/8", "Policy": "Accept",
                "Priority": "1", "SecurityGroupRuleId": "sgr-2"}]
    wanted = [{"ip_protocol": "tcp", "port_range": "22/22", "source_cidr_ip": "0.0.0.0/0", "policy": "accept",
               "priority": 1}, {"ip_protocol": "icmp", "source_cidr_ip": "0.0.0.0/0"}]
    to_add, to_revoke = alicloud_security_group.plan_rules(current, wanted, purge=True)
    assert [r["ip_protocol"] for r in to_add] == ["icmp"]
    assert [r["SecurityGroupRuleId"] for r in to_revoke] == ["sgr-2"]
    assert alicloud_security_group.plan_rules(current, wanted, purge=False)[1] == []


@pytest.mark.parametrize(("params", "message"), [
    ({"min_size": 2, "max_size": 1}, "min_size (2) is greater than max_size (1)"),
    ({"min_size": 0, "max_size": 1, "desired_capacity": 3}, "desired_capacity (3) must be between"),
    ({"min_size": 0, "max_size": 1, "spot_instance_pools": 11}, "spot_instance_pools"),
    ({"max_size": 1}, "required to create"),
])
def test_scaling_group_sizes_are_checked_before_any_call(params, message):
    assert message in alicloud_scaling_group.check_sizes(params, None)


def test_scaling_group_sizes_are_checked_against_the_existing_group():
    group = {"MinSize": 0, "MaxSize": 1, "DesiredCapacity": 0}
    assert alicloud_scaling_group.check_sizes({"desired_capacity": 1}, group) is None
    assert "between" in alicloud_scaling_group.check_sizes({"desired_capacity": 2}, group)


def test_scaling_group_changes_cover_the_spot_options():
    group = {"MinSize": 0, "MaxSize": 1, "DesiredCapacity": 0, "MultiAZPolicy": "PRIORITY",
             "SpotInstanceRemedy": False, "CompensateWithOnDemand": True, "VSwitchIds": ["vsw-1"],
             "CapacityOptions": {"SpotAutoReplaceOnDemand": False}}
    params = {"desired_capacity": 1, "multi_az_policy": "COST_OPTIMIZED", "spot_instance_remedy": True,
              "compensate_with_on_demand": True, "spot_auto_replace_on_demand": True,
              "vswitch_ids": ["vsw-1", "vsw-2"]}
    assert alicloud_scaling_group.group_changes(group, params) == {
        "DesiredCapacity": 1, "MultiAZPolicy": "COST_OPTIMIZED", "SpotInstanceRemedy": True,
        "CapacityOptions": {"SpotAutoReplaceOnDemand": True}, "VSwitchIds": ["vsw-1", "vsw-2"]}


def test_scaling_configuration_changes_are_what_differs():
    config = {"ImageId": "m-1", "InstanceTypes": ["ecs.a"], "SpotStrategy": "SpotAsPriceGo", "SpotDuration": 1,
              "SpotPriceLimits": [], "SystemDisk": {"Category": "cloud_essd", "Size": 40}}
    params = {"image_id": "m-2", "instance_types": ["ecs.a"], "spot_strategy": "SpotAsPriceGo", "spot_duration": 1,
              "spot_price_limits": None, "system_disk_size": 60, "user_data": None}
    assert alicloud_scaling_configuration.config_changes(config, params) == {"ImageId": "m-2",
                                                                             "SystemDisk": {"Size": 60}}


@CHECK_MODE
def test_instance_tags_are_set_and_purged(fake_module, check_mode):
    instance = {"InstanceId": "i-1", "Tags": {"keep": "1", "old": "x"}}
    module = fake_module({"tags": {"keep": "1", "new": "2"}, "purge_tags": True}, check_mode)
    assert alicloud_ecs_instance.update_tags(module, instance)
    expected = [] if check_mode else ["UntagResources", "TagResources"]
    assert module.actions() == expected


@CHECK_MODE
def test_instance_power_follows_the_state(fake_module, check_mode):
    module = fake_module({"state": "stopped"}, check_mode)
    assert alicloud_ecs_instance.update_power(module, {"InstanceId": "i-1", "Status": "Running"})
    assert module.actions() == ([] if check_mode else ["StopInstance"])
    module = fake_module({"state": "present"}, check_mode)
    assert not alicloud_ecs_instance.update_power(module, {"InstanceId": "i-1", "Status": "Stopped"})


@CHECK_MODE
def test_instance_release_deletes_it_and_gone_is_no_change(fake_module, check_mode):
    module = fake_module({"wait": False}, check_mode)
    assert not alicloud_ecs_instance.ensure_absent(module, None)
    assert alicloud_ecs_instance.ensure_absent(module, {"InstanceId": "i-1", "Status": "Running"})
    assert module.calls == ([] if check_mode else [("ecs", "DeleteInstance", {"InstanceId": "i-1", "Force": True})])


def test_instance_settings_that_cannot_change_are_named():
    instance = {"ImageId": "m-1", "InstanceType": "ecs.a", "VpcAttributes": {"VSwitchId": "vsw-1"},
                "SecurityGroupIds": {"SecurityGroupId": ["sg-1"]}}
    conflicts = alicloud_ecs_instance.fixed_conflicts(instance, {"image_id": "m-1", "instance_type": "ecs.b",
                                                                 "vswitch_id": "vsw-1", "security_group_id": "sg-2"})
    assert conflicts == ["instance_type (ecs.a -> ecs.b)", "security_group_id (sg-1 -> sg-2)"]


def test_bucket_tags_merge_or_replace():
    assert alicloud_oss_bucket.wanted_tags({"a": "1"}, {"tags": {"b": 2}, "purge_tags": True}) == {"b": "2"}
    assert alicloud_oss_bucket.wanted_tags({"a": "1"}, {"tags": {"b": 2}, "purge_tags": False}) == {"a": "1",
                                                                                                   "b": "2"}
    assert alicloud_oss_bucket.wanted_tags({"a": "1"}, {"tags": None, "purge_tags": True}) == {"a": "1"}
