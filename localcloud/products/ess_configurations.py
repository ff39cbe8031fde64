"""ESS 2022-02-22: scaling configurations (the instance template of a scaling group)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING

from .. import identities, ids, images, key_pairs, network, scaling_groups
from ..clock import iso_minutes
from ..errors import ApiError, invalid, missing
from ..registry import Request, action
from .ess_common import Doc, get_configuration, get_group, nested_params, page

if TYPE_CHECKING:
    from ..cloud import Cloud

SPOT_STRATEGIES = ("NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo")
DISK_CATEGORIES = ("cloud", "cloud_efficiency", "cloud_ssd", "cloud_essd", "cloud_auto", "cloud_essd_entry")
MAX_CONFIGURATIONS = 10
MAX_INSTANCE_TYPES = 10
USER_DATA_LIMIT = 32 * 1024


def _image(cloud: Cloud, image_id: str) -> None:
    image = images.IMAGE.find(cloud.store, image_id)
    if image is None or image.get("Status", "Available") != "Available":
        raise ApiError("InvalidImageId.NotFound", f"The specified image {image_id} does not exist or is not "
                       "Available.", 404)


def _instance_types(cloud: Cloud, req: Request) -> tuple[str, list[str]] | None:
    types = req.params.list("InstanceTypes")
    single = req.params.str("InstanceType")
    if not types and single is None:
        return None
    types = types or [single]
    if len(types) > MAX_INSTANCE_TYPES:
        raise invalid("InstanceTypes", f"At most {MAX_INSTANCE_TYPES} instance types.")
    for itype in types:
        cloud.market.check(None, itype)
    return types[0], types


def _price_limits(req: Request) -> list[Doc] | None:
    given = req.params.objects("SpotPriceLimits")
    if not given:
        return None
    limits = []
    for limit in given:
        try:
            price = float(limit.get("PriceLimit", ""))
        except ValueError:
            raise invalid("SpotPriceLimits.PriceLimit", "It must be a number.") from None
        if not limit.get("InstanceType") or price <= 0:
            raise invalid("SpotPriceLimits", "Each entry needs an InstanceType and a positive PriceLimit.")
        limits.append({"InstanceType": limit["InstanceType"], "PriceLimit": price})
    return limits


def _user_data(text: str) -> str:
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("UserData", "It must be Base64-encoded.") from None
    if len(decoded) > USER_DATA_LIMIT:
        raise invalid("UserData", "It is at most 32 KB before encoding.")
    return text


def _security_groups(cloud: Cloud, group: Doc, req: Request) -> list[str] | None:
    given = req.params.list("SecurityGroupIds") or (
        [req.params.str("SecurityGroupId")] if req.params.str("SecurityGroupId") else [])
    if not given:
        return None
    for sg_id in given:
        sg = network.SECURITY_GROUP.find(cloud.store, sg_id)
        if sg is None:
            raise ApiError("InvalidSecurityGroupId.NotFound", f"The specified security group {sg_id} does not "
                           "exist.", 404)
        if sg.get("VpcId") and group.get("VpcId") and sg["VpcId"] != group["VpcId"]:
            raise ApiError("InvalidSecurityGroupId.VPCMismatch", f"The security group {sg_id} is in {sg['VpcId']}; "
                           f"the scaling group is in {group['VpcId']}.")
    return given


def _tags(text: str) -> list[Doc]:
    """ESS takes the tags of a configuration as a JSON object: {"key": "value", ...}."""
    try:
        parsed = json.loads(text)
    except ValueError:
        raise invalid("Tags", "It must be a JSON object such as {\"key\":\"value\"}.") from None
    if not isinstance(parsed, dict):
        raise invalid("Tags", "It must be a JSON object such as {\"key\":\"value\"}.")
    return [{"Key": str(k), "Value": str(v)} for k, v in parsed.items()]


def _system_disk(req: Request, current: Doc) -> Doc | None:
    disk = nested_params(req, "SystemDisk")
    category = disk.str("Category", choices=DISK_CATEGORIES) or req.params.str("SystemDiskCategory",
                                                                              choices=DISK_CATEGORIES)
    size = disk.int("Size", minimum=20, maximum=2048)
    if size is None:
        size = req.params.int("SystemDiskSize", minimum=20, maximum=2048)
    if category is None and size is None:
        return None
    return {"Category": category or current["Category"], "Size": size or current["Size"]}


def _fields(cloud: Cloud, req: Request, group: Doc, current: Doc) -> Doc:
    """The configuration fields given in this request, validated."""
    params = req.params
    found: Doc = {}
    if (image_id := params.str("ImageId")) is not None:
        _image(cloud, image_id)
        found["ImageId"] = image_id
    if (types := _instance_types(cloud, req)) is not None:
        found["InstanceType"], found["InstanceTypes"] = types
    if (strategy := params.str("SpotStrategy", choices=SPOT_STRATEGIES)) is not None:
        found["SpotStrategy"] = strategy
    if (limits := _price_limits(req)) is not None:
        found["SpotPriceLimits"] = limits
    if (duration := params.int("SpotDuration", minimum=0, maximum=6)) is not None:
        found["SpotDuration"] = duration
    # "Currently, only terminate is supported" (the ESS 2022-02-22 model of CreateScalingConfiguration): ECS's
    # RunInstances also takes Stop, a scaling configuration does not.
    if (behaviour := params.str("SpotInterruptionBehavior", choices=("Terminate",))) is not None:
        found["SpotInterruptionBehavior"] = behaviour
    if (role := params.str("RamRoleName")) is not None:
        if identities.role(cloud.store, role) is None:
            raise ApiError("InvalidRamRole.NotFound", f"The specified RAM role {role} does not exist.", 404)
        found["RamRoleName"] = role
    if (user_data := params.str("UserData")) is not None:
        found["UserData"] = _user_data(user_data)
    if (groups := _security_groups(cloud, group, req)) is not None:
        found["SecurityGroupId"], found["SecurityGroupIds"] = groups[0], groups
    if (disk := _system_disk(req, current["SystemDisk"])) is not None:
        found["SystemDisk"] = disk
    if categories := params.list("SystemDiskCategories"):
        if any(c not in DISK_CATEGORIES for c in categories):
            raise invalid("SystemDiskCategories", f"Valid values: {', '.join(DISK_CATEGORIES)}.")
        found["SystemDiskCategories"] = categories
    if (bandwidth := params.int("InternetMaxBandwidthOut", minimum=0, maximum=100)) is not None:
        found["InternetMaxBandwidthOut"] = bandwidth
    if (password := params.str("Password")) is not None:
        if not 8 <= len(password) <= 30:
            raise invalid("Password", "It is 8 to 30 characters long.")
        found["PasswordSetted"] = True  # the password itself is never kept nor echoed
    if (inherit := params.bool("PasswordInherit")) is not None:
        found["PasswordInherit"] = inherit
    if (key_pair := params.str("KeyPairName")) is not None:
        found["KeyPairName"] = key_pairs.check_launch(cloud.store, key_pair,
                                                      "The specified KeyPairName does not exist.")
    for name in ("InstanceName", "HostName", "InstanceDescription"):
        if (value := params.str(name)) is not None:
            found[name] = value
    if (tags := params.str("Tags")) is not None:
        found["Tags"] = _tags(tags)
    return found


def _check_name(cloud: Cloud, group_id: str, name: str, config_id: str) -> None:
    if any(c["ScalingConfigurationName"] == name and c["ScalingConfigurationId"] != config_id
           for c in scaling_groups.configurations_of(cloud.store, group_id)):
        raise ApiError("ScalingConfigurationName.Duplicate",
                       f"The specified value of parameter \"ScalingConfigurationName\" is duplicated: {name}.")


@action("ess", "CreateScalingConfiguration")
def create_scaling_configuration(cloud: Cloud, req: Request) -> Doc:
    group = get_group(cloud, req.params.str("ScalingGroupId", required=True))
    group_id = group["ScalingGroupId"]
    if len(scaling_groups.configurations_of(cloud.store, group_id)) >= MAX_CONFIGURATIONS:
        raise ApiError("QuotaExceeded.ScalingConfiguration", f"The scaling group {group_id} already has "
                       f"{MAX_CONFIGURATIONS} scaling configurations; delete one first.")
    config_id = ids.new_id("asc", cloud.settings.region)
    now = cloud.clock.now()
    config: Doc = {
        "ScalingConfigurationId": config_id, "ScalingGroupId": group_id,
        "ScalingConfigurationName": req.params.str("ScalingConfigurationName") or config_id,
        "SpotStrategy": "NoSpot", "SpotPriceLimits": [], "SpotDuration": 1,
        "SpotInterruptionBehavior": "Terminate", "RamRoleName": "", "UserData": "", "SecurityGroupId": "",
        "SecurityGroupIds": [], "SystemDisk": {"Category": "cloud_essd", "Size": 40}, "SystemDiskCategories": [],
        "InternetMaxBandwidthOut": 0, "PasswordSetted": False, "PasswordInherit": False, "KeyPairName": "",
        "InstanceName": "", "HostName": "", "InstanceDescription": "", "Tags": [],
        "CreatedAt": now, "CreationTime": iso_minutes(now),
    }
    config.update(_fields(cloud, req, group, config))
    if "ImageId" not in config:
        raise missing("ImageId")
    if "InstanceType" not in config:
        raise missing("InstanceType")
    _check_name(cloud, group_id, config["ScalingConfigurationName"], config_id)
    scaling_groups.SCALING_CONFIGURATION.save(cloud.store, config)
    if not group.get("ActiveScalingConfigurationId"):
        # The first configuration of a group becomes its active one, as in the console's flow.
        scaling_groups.SCALING_GROUP.update(cloud.store, group_id, ActiveScalingConfigurationId=config_id)
    return {"ScalingConfigurationId": config_id}


@action("ess", "ModifyScalingConfiguration")
def modify_scaling_configuration(cloud: Cloud, req: Request) -> Doc:
    config = get_configuration(cloud, req.params.str("ScalingConfigurationId", required=True))
    group = get_group(cloud, config["ScalingGroupId"])
    if (name := req.params.str("ScalingConfigurationName")) is not None:
        _check_name(cloud, group["ScalingGroupId"], name, config["ScalingConfigurationId"])
        config["ScalingConfigurationName"] = name
    config.update(_fields(cloud, req, group, config))
    scaling_groups.SCALING_CONFIGURATION.save(cloud.store, config)
    return {}


@action("ess", "DeleteScalingConfiguration")
def delete_scaling_configuration(cloud: Cloud, req: Request) -> Doc:
    config = get_configuration(cloud, req.params.str("ScalingConfigurationId", required=True))
    config_id = config["ScalingConfigurationId"]
    group = scaling_groups.SCALING_GROUP.find(cloud.store, config["ScalingGroupId"])
    if group is not None and group.get("ActiveScalingConfigurationId") == config_id:
        if group["LifecycleState"] == "Active":
            raise ApiError("IncorrectScalingConfigurationLifecycleState", f"The scaling configuration {config_id} "
                           f"is the active one of the enabled scaling group {group['ScalingGroupId']}; disable the "
                           "group or make another configuration active first.")
        scaling_groups.SCALING_GROUP.update(cloud.store, group["ScalingGroupId"], ActiveScalingConfigurationId="")
    scaling_groups.SCALING_CONFIGURATION.delete(cloud.store, config_id)
    return {}


def describe_configuration(cloud: Cloud, config: Doc) -> Doc:
    group = scaling_groups.SCALING_GROUP.find(cloud.store, config["ScalingGroupId"]) or {}
    active = group.get("ActiveScalingConfigurationId") == config["ScalingConfigurationId"]
    public = {k: v for k, v in config.items() if k not in ("CreatedAt", "SystemDisk")}
    public.update(
        LifecycleState="Active" if active else "Inactive",
        SystemDiskCategory=config["SystemDisk"]["Category"], SystemDiskSize=config["SystemDisk"]["Size"],
        InternetChargeType="PayByTraffic", IoOptimized="optimized", DataDisks=[],
    )
    return public


@action("ess", "DescribeScalingConfigurations")
def describe_scaling_configurations(cloud: Cloud, req: Request) -> Doc:
    group_id = req.params.str("ScalingGroupId")
    wanted_ids = set(req.params.list("ScalingConfigurationIds"))
    wanted_names = set(req.params.list("ScalingConfigurationNames"))

    def matches(config: Doc) -> bool:
        return ((group_id is None or config["ScalingGroupId"] == group_id)
                and (not wanted_ids or config["ScalingConfigurationId"] in wanted_ids)
                and (not wanted_names or config["ScalingConfigurationName"] in wanted_names))

    configs, paging = page(req, scaling_groups.SCALING_CONFIGURATION.all(cloud.store, matches))
    return {**paging, "ScalingConfigurations": [describe_configuration(cloud, c) for c in configs]}
