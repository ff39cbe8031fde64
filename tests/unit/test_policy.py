"""RAM policy documents: the least-privilege OSS policy, parsing and comparing."""

from __future__ import annotations

import pytest
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_policy import (
    PolicyError,
    check_bucket_name,
    oss_training_policy,
    parse_policy,
    same_policy,
    scaling_group_policy,
    training_agent_statements,
    trust_policy,
)


def test_training_policy_reads_model_and_data_and_writes_only_the_output():
    policy = oss_training_policy("ess-data", ["model/", "data"], ["output/"])
    by_action = {tuple(s["Action"]): s["Resource"] for s in policy["Statement"]}
    assert by_action[("oss:GetBucketInfo", "oss:GetBucketStat")] == ["acs:oss:*:*:ess-data"]
    # The prefixes' objects and the exact names a file system on the bucket looks up (`data`, `data#40`).
    assert by_action[("oss:GetObject",)] == [f"acs:oss:*:*:ess-data/{name}{suffix}"
                                             for name in ("data", "model", "output")
                                             for suffix in ("", "#*", "/*", "_$folder$")]
    listings = [s["Condition"] for s in policy["Statement"] if s["Action"] == ["oss:ListObjects"]]
    # From the top ("") and inside the prefixes, in the one form RAM's documentation gives for both.
    assert listings == [
        {"StringLike": {"oss:Prefix": ["", "data#*", "data/*", "model#*", "model/*", "output#*", "output/*"]}}]
    writes = by_action[("oss:PutObject", "oss:DeleteObject", "oss:AbortMultipartUpload", "oss:ListParts")]
    assert writes == ["acs:oss:*:*:ess-data/output/*"]
    assert all("oss:*" not in s["Action"] for s in policy["Statement"])


def test_the_agent_may_only_read_instances_of_its_region_and_report_its_event():
    instances, events = training_agent_statements("cn-hangzhou")
    assert instances == {"Effect": "Allow", "Action": ["ecs:DescribeInstances"],
                         "Resource": ["acs:ecs:cn-hangzhou:*:instance/*"]}
    # CloudMonitor's PutCustomEvent has no resource-level permission.
    assert events == {"Effect": "Allow", "Action": ["cms:PutCustomEvent"], "Resource": ["*"]}


def test_the_instances_may_scale_in_and_zero_their_own_group_only():
    (statement,) = scaling_group_policy("cn-hangzhou", "asg-bp1abc")["Statement"]
    assert statement["Resource"] == ["acs:ess:cn-hangzhou:*:scalinggroup/asg-bp1abc"]
    assert "ess:ModifyScalingGroup" in statement["Action"]
    assert not [action for action in statement["Action"] if "*" in action]
    with pytest.raises(PolicyError, match="scaling group id"):
        scaling_group_policy("cn-hangzhou", "*")


def test_training_policy_needs_a_prefix_and_a_valid_bucket():
    with pytest.raises(PolicyError, match="prefix"):
        oss_training_policy("ess-data", [], [])
    with pytest.raises(PolicyError, match="Invalid bucket name"):
        oss_training_policy("Bad_Bucket", ["a/"], [])


@pytest.mark.parametrize("name", ["ab", "UPPER", "-lead", "trail-", "under_score", "a" * 64, "dou--ble"])
def test_invalid_bucket_names_are_refused(name):
    with pytest.raises(PolicyError):
        check_bucket_name(name)


@pytest.mark.parametrize(("document", "message"), [
    ("{not json", "not valid JSON"),
    ('{"Version": "2", "Statement": []}', "Version"),
    ('{"Version": "1", "Statement": []}', "Statement"),
    ('{"Version": "1", "Statement": [{"Effect": "Maybe", "Action": "x"}]}', "Effect"),
    ('{"Version": "1", "Statement": [{"Effect": "Allow"}]}', "Action"),
])
def test_policies_that_cannot_parse_say_why(document, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(document)


def test_the_same_policy_spelled_differently_is_the_same():
    a = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["b", "a"], "Resource": "r"}]}
    b = '{"Statement": [{"Resource": ["r"], "Action": ["a", "b"], "Effect": "Allow"}], "Version": "1"}'
    assert same_policy(a, b)
    assert not same_policy(a, {"Version": "1", "Statement": [{"Effect": "Deny", "Action": "a", "Resource": "r"}]})


def test_trust_policy_lets_ecs_assume_the_role():
    statement = trust_policy(["ecs.aliyuncs.com"])["Statement"][0]
    assert statement["Principal"] == {"Service": ["ecs.aliyuncs.com"]} and statement["Action"] == "sts:AssumeRole"
