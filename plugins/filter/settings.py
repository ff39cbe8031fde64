"""Checks of the user-facing settings, all at once and before anything changes: one message per problem,
naming the setting, its value and what is allowed.

`settings_problems(settings, cloud)` is preflight's check (playbooks/tasks/check_settings.yml: the local
rules, then what the cloud offers: `cloud` is alicloud_zone_info's result); `training_argument_problems`
checks the swift sft arguments, in train_service's tasks/assert.yml, which preflight includes too. The
documentation of each filter is beside this file (<filter>.yml).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

# OSS bucket names: 3-63 characters, lowercase letters, digits and hyphens, starting and ending with a
# letter or a digit (OSS's naming rules).
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
# VPC CIDR blocks must lie in one of the private ranges (VPC's CreateVpc rules).
PRIVATE_RANGES = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
VPC_PREFIX = (8, 28)  # a VPC from /8 to /28 ...
VSWITCH_PREFIX = (16, 29)  # ... a vSwitch from /16 to /29
# Scaling groups hold 0 to 2000 instances (ESS's MaxSize limit).
MAX_GROUP_SIZE = 2000

# The scaling group's, its configuration's and its lifecycle hook's settings, as ESS takes them (the ESS
# 2022-02-22 models of CreateScalingGroup, CreateScalingConfiguration and CreateLifecycleHook): a setting
# that is absent is not checked (the module's default applies).
SCALING_CHOICES = {
    "scaling_group_multi_az_policy": ("PRIORITY", "COST_OPTIMIZED", "BALANCE", "COMPOSABLE"),
    "scaling_configuration_spot_strategy": ("NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"),
    # "Currently, only terminate is supported" for a scaling configuration.
    "scaling_configuration_spot_interruption_behavior": ("Terminate",),
}
SCALING_RANGES = {
    "scaling_group_on_demand_base_capacity": (0, 1000),
    "scaling_group_on_demand_percentage_above_base_capacity": (0, 100),
    "scaling_group_spot_instance_pools": (1, 10),
    "scaling_lifecycle_hook_timeout": (30, 21600),
    "scaling_configuration_spot_duration": (0, 1),  # hours of protection: none or one
}
# What Ansible's bool type takes, as text (`-e name=false` gives a string).
ANSIBLE_BOOLEANS = ("true", "false", "yes", "no", "on", "off", "1", "0", "y", "n", "t", "f")
SCALING_SWITCHES = ("scaling_group_spot_instance_remedy", "scaling_group_compensate_with_on_demand",
                    "scaling_group_spot_auto_replace_on_demand")
# Names of 2 to 64 characters, starting with a letter, a digit or a Chinese character; then letters, digits,
# Chinese characters, `_`, `-` and `.`.
SCALING_NAME_RE = re.compile(r"^[A-Za-z0-9\u4e00-\u9fa5][\w\u4e00-\u9fa5.\-]{1,63}$")
SCALING_NAMES = ("scaling_group_name", "scaling_configuration_name", "scaling_lifecycle_hook_name")

# swift sft arguments that must be integers of at least the given value (ms-swift takes them as counts).
ARGUMENT_MINIMUMS = {
    "num_train_epochs": 1, "per_device_train_batch_size": 1, "per_device_eval_batch_size": 1,
    "gradient_accumulation_steps": 1, "eval_steps": 1, "save_steps": 1, "save_total_limit": 1,
    "logging_steps": 1, "max_length": 1, "lora_rank": 1, "lora_alpha": 1, "dataloader_num_workers": 0,
    "seed": 0, "max_steps": 1,
}
# Arguments that are numbers: (lowest, highest, whether the lowest is allowed).
ARGUMENT_RANGES = {
    "learning_rate": (0.0, None, False),
    "warmup_ratio": (0.0, 1.0, True),
    "split_dataset_ratio": (0.0, 1.0, True),
    "lora_dropout": (0.0, 1.0, True),
}


def _number(value: Any) -> float | None:
    """A number, or a string that is one ("1e-4"); None otherwise (booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def training_argument_problems(arguments: dict[str, Any], setting: str = "training_argument_overrides") -> list[str]:
    """What is wrong with swift sft's arguments (null values are left out, so never wrong)."""
    problems = []
    for name, minimum in ARGUMENT_MINIMUMS.items():
        value = arguments.get(name)
        if value is None:
            continue
        number = _integer(value)
        if number is None or number < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
            problems.append(f"{setting}: {name} is {value!r}; ms-swift needs {what}.")
    for name, (low, high, low_allowed) in ARGUMENT_RANGES.items():
        value = arguments.get(name)
        if value is None:
            continue
        number = _number(value)
        too_low = number is not None and (number < low or (number == low and not low_allowed))
        if number is None or too_low or (high is not None and number > high):
            allowed = f"a number above {low:g}" if high is None else f"a number from {low:g} to {high:g}"
            problems.append(f"{setting}: {name} is {value!r}; ms-swift needs {allowed}.")
    return problems


def _bucket_problems(name: Any) -> list[str]:
    text = str(name or "")
    if BUCKET_RE.match(text) and "--" not in text:
        return []
    return [f"oss_bucket_name is {text!r}: an OSS bucket name has 3 to 63 characters, lowercase letters, "
            "digits and hyphens only, and starts and ends with a letter or a digit."]


def _network(setting: str, value: Any, prefixes: tuple[int, int]) -> tuple[Any, list[str]]:
    try:
        net = ipaddress.ip_network(str(value), strict=True)
    except ValueError as err:
        reason = "it has host bits set" if "host bits" in str(err) else "it is not a CIDR block"
        return None, [f"{setting} is {value!r}: {reason} (for example 172.16.1.0/24)."]
    if net.version != 4 or not prefixes[0] <= net.prefixlen <= prefixes[1]:
        return None, [f"{setting} is {value!r}: it must be an IPv4 block from /{prefixes[0]} to /{prefixes[1]}."]
    return net, []


def _network_problems(vpc_cidr: Any, cidrs: list[Any], zones: list[Any]) -> list[str]:
    vpc, problems = _network("alicloud_vpc_cidr", vpc_cidr, VPC_PREFIX)
    if vpc is not None and not any(vpc.subnet_of(r) for r in PRIVATE_RANGES):
        problems.append(f"alicloud_vpc_cidr is {vpc_cidr!r}: a VPC's block lies in 10.0.0.0/8, 172.16.0.0/12 or "
                        "192.168.0.0/16.")
    if len(zones) < 2:
        problems.append(f"alicloud_zones is {zones!r}: give at least two zones (spot capacity in another zone "
                        "is what keeps training going).")
    if len(cidrs) != len(zones):
        problems.append(f"alicloud_vswitch_cidrs has {len(cidrs)} blocks for {len(zones)} zones in alicloud_zones: "
                        "give one vSwitch block per zone, in the same order.")
    if len(set(map(str, zones))) != len(zones):
        problems.append(f"alicloud_zones is {zones!r}: each zone once.")
    seen: list[tuple[str, Any]] = []
    for index, cidr in enumerate(cidrs):
        setting = f"alicloud_vswitch_cidrs[{index}]"
        net, wrong = _network(setting, cidr, VSWITCH_PREFIX)
        problems += wrong
        if net is None:
            continue
        if vpc is not None and not net.subnet_of(vpc):
            problems.append(f"{setting} is {cidr!r}: it is not inside the VPC's block alicloud_vpc_cidr "
                            f"({vpc_cidr}).")
        for other_setting, other in seen:
            if net == other:
                problems.append(f"{setting} is {cidr!r}, the same block as {other_setting}: give each zone's "
                                "vSwitch a block of its own.")
            elif net.overlaps(other):
                problems.append(f"{setting} is {cidr!r}: it overlaps {other_setting} ({other}); vSwitch blocks "
                                "must not overlap.")
        seen.append((setting, net))
    return problems


def _size_problems(settings: dict[str, Any]) -> list[str]:
    names = ("scaling_group_min_size", "scaling_group_max_size", "scaling_group_desired_capacity")
    values = {n: settings.get(n) for n in names}
    problems = []
    for name, value in values.items():
        number = _integer(value)
        if number is None or not 0 <= number <= MAX_GROUP_SIZE:
            problems.append(f"{name} is {value!r}: an integer from 0 to {MAX_GROUP_SIZE}.")
    low, high, desired = (_integer(values[n]) for n in names)
    if problems:
        return problems
    if low > high:
        problems.append(f"scaling_group_min_size ({low}) is above scaling_group_max_size ({high}).")
    elif not low <= desired <= high:
        problems.append(f"scaling_group_desired_capacity ({desired}) is outside scaling_group_min_size ({low}) to "
                        f"scaling_group_max_size ({high}).")
    if high < 1:
        problems.append("scaling_group_max_size is 0: the group could never start an instance to train on.")
    return problems


def _scaling_problems(settings: dict[str, Any]) -> list[str]:
    """The scaling group's, configuration's and hook's settings against what ESS takes."""
    problems = []
    for name, allowed in SCALING_CHOICES.items():
        if name in settings and settings[name] not in allowed:
            problems.append(f"{name} is {settings[name]!r}: ESS takes {', '.join(allowed)}.")
    for name, (low, high) in SCALING_RANGES.items():
        if name not in settings:
            continue
        number = _integer(settings[name])
        if number is None or not low <= number <= high:
            problems.append(f"{name} is {settings[name]!r}: ESS takes an integer from {low} to {high}.")
    for name in SCALING_SWITCHES:
        value = settings.get(name)
        if name in settings and not isinstance(value, bool) and str(value).lower() not in ANSIBLE_BOOLEANS:
            problems.append(f"{name} is {value!r}: true or false.")
    for name in SCALING_NAMES:
        if name in settings and not SCALING_NAME_RE.match(str(settings[name])):
            problems.append(f"{name} is {settings[name]!r}: ESS takes 2 to 64 characters, starting with a letter, "
                            "a digit or a Chinese character, then those, '_', '-' and '.'.")
    return problems


def _cloud_problems(settings: dict[str, Any], cloud: dict[str, Any]) -> list[str]:
    region = cloud.get("region")
    if not cloud.get("region_known", True):
        return [f"alicloud_region is {region!r}: the account does not offer it; it offers "
                f"{', '.join(cloud.get('regions') or []) or 'no region'}."]
    problems = []
    offered = cloud.get("zones") or []
    for zone in settings.get("alicloud_zones") or []:
        if zone not in offered:
            problems.append(f"alicloud_zones: {zone!r} is not a zone of {region}; its zones are "
                            f"{', '.join(offered)}.")
    itype = settings.get("alicloud_instance_type")
    sold = cloud.get("instance_types") or {}
    for zone in settings.get("alicloud_zones") or []:
        if zone in offered and zone in sold and itype not in sold[zone]:
            elsewhere = [z for z, types in sold.items() if itype in types]
            problems.append(f"alicloud_instance_type is {itype!r}: zone {zone} does not sell it"
                            + (f" (zones that do: {', '.join(elsewhere)})." if elsewhere else
                               f"; no zone of {region} does."))
    return problems + _spot_problems(settings, cloud)


def _spot_problems(settings: dict[str, Any], cloud: dict[str, Any]) -> list[str]:
    """A spot-first group whose zones have no spot stock of the type now would start pay-as-you-go only."""
    spot = cloud.get("spot_instance_types") or {}
    itype, zones = settings.get("alicloud_instance_type"), list(settings.get("alicloud_zones") or [])
    if not spot or not settings.get("preflight_require_spot", True):
        return []
    sold = cloud.get("instance_types") or {}
    if any(itype in spot.get(zone, ()) for zone in zones):
        return []
    without = [zone for zone in zones if itype in sold.get(zone, ())]
    elsewhere = [zone for zone, types in spot.items() if itype in types and zone not in zones]
    return [f"alicloud_zones: none of {', '.join(zones)} has spot stock of {itype} now"
            + (f" ({', '.join(without)} sell{'s' if len(without) == 1 else ''} it pay-as-you-go only)" if without
               else "")
            + (f"; zones that have: {', '.join(elsewhere)}" if elsewhere else "; no zone of the region has")
            + ". Choose zones with spot stock, try again when spot comes back, or set preflight_require_spot: "
              "false to start pay-as-you-go (the group returns to spot when it can)."]


def settings_problems(settings: dict[str, Any], cloud: dict[str, Any] | None = None) -> list[str]:
    """Every problem of the settings; `cloud` (alicloud_zone_info's result) adds what the cloud offers."""
    problems = _bucket_problems(settings.get("oss_bucket_name"))
    problems += _network_problems(settings.get("alicloud_vpc_cidr"), list(settings.get("alicloud_vswitch_cidrs") or []),
                                  list(settings.get("alicloud_zones") or []))
    problems += _size_problems(settings)
    problems += _scaling_problems(settings)
    if settings.get("connection_region") and settings.get("alicloud_region") != settings["connection_region"]:
        problems.append(f"alicloud_region is {settings.get('alicloud_region')!r} but the connection's region is "
                        f"{settings['connection_region']!r}"
                        + (" (localcloud serves only the region of .localcloud/env; start it with that region, or "
                           "drop the override)." if settings.get("cloud_kind") == "localcloud" else
                           " (ALIBABA_CLOUD_REGION_ID or the inventory's alicloud_connection.region): make them "
                           "the same."))
    if settings.get("foreign_environment_keys"):
        problems.append("ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET in the environment are not "
                        "localcloud's keys, and inventory/local uses localcloud's own (.localcloud/env): unset them "
                        "(or `. .localcloud/env`), or use -i inventory/alicloud for the account they belong to.")
    if settings.get("oss_bucket_versioning") in ("Enabled", "Suspended"):
        problems.append(f"oss_bucket_name: the bucket {settings.get('oss_bucket_name')!r} has versioning "
                        f"{settings['oss_bucket_versioning']}, and OSS ignores x-oss-forbid-overwrite on a versioned "
                        "bucket (PutObject's documentation), which the training lease needs to keep a second "
                        "trainer out: name a bucket whose versioning was never enabled (a new name makes one).")
    if settings.get("key_pair_file_without_name"):
        problems.append("alicloud_key_pair_public_key_file is set without alicloud_key_pair_name: name the key pair "
                        "the playbooks import it as.")
    if settings.get("key_pair_problem"):
        problems.append(f"alicloud_key_pair_name: {settings['key_pair_problem']}")
    if cloud:
        problems += _cloud_problems(settings, cloud)
    return problems


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"settings_problems": settings_problems, "training_argument_problems": training_argument_problems}
