"""The settings check of preflight (plugins/filter/settings.py): one message per problem, naming the
setting, its value and what is allowed. The swift sft arguments are the train_service role's to check
(its tasks/assert.yml, which preflight includes), with training_argument_problems."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.spotfirst.finetune.plugins.filter.settings import (
    settings_problems,
    training_argument_problems,
)

GOOD = {
    "cloud_kind": "localcloud", "alicloud_region": "cn-hangzhou", "connection_region": "cn-hangzhou",
    "alicloud_zones": ["cn-hangzhou-j", "cn-hangzhou-k"], "alicloud_vpc_cidr": "172.16.0.0/12",
    "alicloud_vswitch_cidrs": ["172.16.1.0/24", "172.16.2.0/24"], "alicloud_instance_type": "ecs.gn7i-c8g1.2xlarge",
    "oss_bucket_name": "ess-lora-deepseek7b-data", "scaling_group_min_size": 0, "scaling_group_max_size": 1,
    "scaling_group_desired_capacity": 1,
}
ARGUMENTS = {"save_steps": 10, "learning_rate": "1e-4", "lora_rank": 8, "warmup_ratio": 0.05,
             "dataloader_num_workers": 0, "split_dataset_ratio": None}
CLOUD = {"region": "cn-hangzhou", "region_known": True, "regions": ["cn-hangzhou"],
         "zones": ["cn-hangzhou-h", "cn-hangzhou-j", "cn-hangzhou-k"],
         "instance_types": {"cn-hangzhou-h": [], "cn-hangzhou-j": ["ecs.gn7i-c8g1.2xlarge"],
                            "cn-hangzhou-k": ["ecs.gn7i-c8g1.2xlarge"]}}


def with_(**changes: Any) -> dict[str, Any]:
    return {**GOOD, **changes}


def test_the_projects_settings_have_no_problem() -> None:
    assert settings_problems(GOOD, CLOUD) == []
    scaling = {"scaling_group_name": "ess-lora-deepseek7b", "scaling_group_multi_az_policy": "COST_OPTIMIZED",
               "scaling_group_on_demand_base_capacity": 0, "scaling_group_on_demand_percentage_above_base_capacity": 0,
               "scaling_group_spot_instance_pools": 1, "scaling_group_spot_instance_remedy": True,
               "scaling_group_compensate_with_on_demand": "false", "scaling_lifecycle_hook_timeout": "600",
               "scaling_configuration_spot_strategy": "SpotAsPriceGo", "scaling_configuration_spot_duration": 1,
               "scaling_configuration_spot_interruption_behavior": "Terminate"}
    assert settings_problems({**GOOD, **scaling}, CLOUD) == []
    assert training_argument_problems(ARGUMENTS) == []


@pytest.mark.parametrize(("changes", "expected"), [
    ({"oss_bucket_name": "My_Bucket"}, "oss_bucket_name is 'My_Bucket': an OSS bucket name has 3 to 63"),
    ({"oss_bucket_name": "ab"}, "oss_bucket_name is 'ab'"),
    ({"oss_bucket_name": "-data"}, "starts and ends with a letter or a digit"),
    ({"oss_bucket_name": "x" * 64}, "3 to 63 characters"),
    ({"alicloud_vpc_cidr": "8.8.0.0/16"}, "alicloud_vpc_cidr is '8.8.0.0/16': a VPC's block lies in 10.0.0.0/8"),
    ({"alicloud_vpc_cidr": "172.16.0.1/12"}, "alicloud_vpc_cidr is '172.16.0.1/12': it has host bits set"),
    ({"alicloud_vswitch_cidrs": ["172.16.1.0/24", "nonsense"]}, "alicloud_vswitch_cidrs[1] is 'nonsense': it is not "
                                                                "a CIDR block"),
    ({"alicloud_vswitch_cidrs": ["172.16.1.0/24", "172.16.1.0/24"]}, "alicloud_vswitch_cidrs[1] is '172.16.1.0/24', "
                                                                     "the same block as alicloud_vswitch_cidrs[0]"),
    ({"alicloud_vswitch_cidrs": ["172.16.0.0/16", "172.16.2.0/24"]}, "alicloud_vswitch_cidrs[1] is '172.16.2.0/24': "
                                                                     "it overlaps alicloud_vswitch_cidrs[0]"),
    ({"alicloud_vswitch_cidrs": ["172.16.1.0/24", "10.0.0.0/24"]}, "it is not inside the VPC's block"),
    ({"alicloud_vswitch_cidrs": ["172.16.1.0/24", "172.16.2.0/30"]}, "it must be an IPv4 block from /16 to /29"),
    ({"alicloud_vswitch_cidrs": ["172.16.1.0/24"]}, "alicloud_vswitch_cidrs has 1 blocks for 2 zones"),
    ({"alicloud_zones": ["cn-hangzhou-j"], "alicloud_vswitch_cidrs": ["172.16.1.0/24"]}, "give at least two zones"),
    ({"scaling_group_min_size": 2}, "scaling_group_min_size (2) is above scaling_group_max_size (1)"),
    ({"scaling_group_desired_capacity": 3}, "scaling_group_desired_capacity (3) is outside"),
    ({"scaling_group_max_size": -1}, "scaling_group_max_size is -1: an integer from 0 to 2000"),
    ({"scaling_group_max_size": "many"}, "scaling_group_max_size is 'many'"),
    ({"alicloud_region": "cn-beijing"}, "alicloud_region is 'cn-beijing' but the connection's region is "
                                        "'cn-hangzhou' (localcloud serves only the region of .localcloud/env"),
    ({"oss_bucket_versioning": "Enabled"}, "has versioning Enabled, and OSS ignores x-oss-forbid-overwrite"),
    ({"oss_bucket_versioning": "Suspended"}, "has versioning Suspended"),
    ({"scaling_group_multi_az_policy": "CHEAPEST"}, "scaling_group_multi_az_policy is 'CHEAPEST': ESS takes "
                                                     "PRIORITY, COST_OPTIMIZED, BALANCE, COMPOSABLE"),
    ({"scaling_group_spot_instance_pools": 0}, "scaling_group_spot_instance_pools is 0: ESS takes an integer from 1 "
                                               "to 10"),
    ({"scaling_group_on_demand_percentage_above_base_capacity": 150}, "is 150: ESS takes an integer from 0 to 100"),
    ({"scaling_group_on_demand_base_capacity": "some"}, "scaling_group_on_demand_base_capacity is 'some'"),
    ({"scaling_group_spot_instance_remedy": "maybe"}, "scaling_group_spot_instance_remedy is 'maybe': true or false"),
    ({"scaling_lifecycle_hook_timeout": 10}, "scaling_lifecycle_hook_timeout is 10: ESS takes an integer from 30 "
                                             "to 21600"),
    ({"scaling_configuration_spot_strategy": "Spot"}, "scaling_configuration_spot_strategy is 'Spot': ESS takes "
                                                      "NoSpot, SpotWithPriceLimit, SpotAsPriceGo"),
    ({"scaling_configuration_spot_duration": 6}, "scaling_configuration_spot_duration is 6"),
    ({"scaling_configuration_spot_interruption_behavior": "Stop"}, "ESS takes Terminate"),
    ({"scaling_group_name": "-group"}, "scaling_group_name is '-group': ESS takes 2 to 64 characters"),
    ({"scaling_lifecycle_hook_name": "x"}, "scaling_lifecycle_hook_name is 'x'"),
])
def test_each_problem_is_named_with_its_value_and_what_is_allowed(changes: dict[str, Any], expected: str) -> None:
    problems = settings_problems(with_(**changes), CLOUD)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(("changes", "expected"), [
    ({"save_steps": -5}, "training_argument_overrides: save_steps is -5; ms-swift needs a positive integer"),
    ({"learning_rate": -1}, "learning_rate is -1; ms-swift needs a number above 0"),
    ({"learning_rate": "fast"}, "learning_rate is 'fast'; ms-swift needs a number above 0"),
    ({"lora_rank": 0}, "lora_rank is 0; ms-swift needs a positive integer"),
    ({"num_train_epochs": 1.5}, "num_train_epochs is 1.5"),
    ({"warmup_ratio": 2}, "warmup_ratio is 2; ms-swift needs a number from 0 to 1"),
    ({"dataloader_num_workers": -1}, "dataloader_num_workers is -1; ms-swift needs an integer of at least 0"),
])
def test_each_wrong_training_argument_is_named_with_its_value(changes: dict[str, Any], expected: str) -> None:
    problems = training_argument_problems({**ARGUMENTS, **changes})
    assert len(problems) == 1 and expected in problems[0], problems


def test_a_null_training_argument_is_left_out_and_the_messages_name_the_setting_given() -> None:
    assert training_argument_problems({**ARGUMENTS, "save_steps": None, "lora_rank": None}) == []
    (problem,) = training_argument_problems({"lora_rank": 0}, "train_service_argument_overrides")
    assert problem.startswith("train_service_argument_overrides: lora_rank is 0")


@pytest.mark.parametrize(("settings", "cloud", "expected"), [
    (GOOD, {**CLOUD, "region_known": False, "regions": ["cn-hangzhou", "cn-beijing"]},
     "alicloud_region is 'cn-hangzhou': the account does not offer it; it offers cn-hangzhou, cn-beijing."),
    (with_(alicloud_zones=["cn-hangzhou-j", "cn-hangzhou-z"]), CLOUD,
     "alicloud_zones: 'cn-hangzhou-z' is not a zone of cn-hangzhou; its zones are cn-hangzhou-h, "
     "cn-hangzhou-j, cn-hangzhou-k."),
    (with_(alicloud_zones=["cn-hangzhou-h", "cn-hangzhou-j"]), CLOUD,
     "alicloud_instance_type is 'ecs.gn7i-c8g1.2xlarge': zone cn-hangzhou-h does not sell it (zones that do: "
     "cn-hangzhou-j, cn-hangzhou-k)."),
])
def test_what_the_cloud_does_not_offer_is_named(settings: dict[str, Any], cloud: dict[str, Any],
                                                expected: str) -> None:
    assert expected in settings_problems(settings, cloud)


def test_every_problem_is_reported_at_once() -> None:
    bad = with_(oss_bucket_name="Bad", scaling_group_min_size=5, alicloud_vswitch_cidrs=["x", "y"])
    assert len(settings_problems(bad, CLOUD)) == 4


TYPE = "ecs.gn7i-c8g1.2xlarge"


@pytest.mark.parametrize(("spot", "require", "expected"), [
    # Spot stock in one of the two zones: the group launches spot there.
    ({"cn-hangzhou-h": [TYPE], "cn-hangzhou-j": [], "cn-hangzhou-k": [TYPE]}, True, None),
    ({"cn-hangzhou-h": [TYPE], "cn-hangzhou-j": [], "cn-hangzhou-k": []}, True,
     f"alicloud_zones: none of cn-hangzhou-j, cn-hangzhou-k has spot stock of {TYPE} now (cn-hangzhou-j, "
     "cn-hangzhou-k sell it pay-as-you-go only); zones that have: cn-hangzhou-h. Choose zones with spot stock"),
    ({"cn-hangzhou-h": [], "cn-hangzhou-j": [], "cn-hangzhou-k": []}, True, "; no zone of the region has."),
    ({"cn-hangzhou-h": [], "cn-hangzhou-j": [], "cn-hangzhou-k": []}, False, None),
    ({}, True, None),  # NoSpot asked: no spot stock read, nothing to say
])
def test_zones_without_spot_stock_are_named(spot: dict[str, list[str]], require: bool, expected: str | None) -> None:
    problems = settings_problems(with_(preflight_require_spot=require), {**CLOUD, "spot_instance_types": spot})
    spot_problems = [p for p in problems if "spot stock" in p]
    assert (spot_problems == []) if expected is None else any(expected in p for p in spot_problems), problems
