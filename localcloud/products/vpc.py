"""VPC 2016-04-28: VPCs, vSwitches and zones.

Records: `vpc` keyed VpcId and `vswitch` keyed VSwitchId, with Alibaba's field names, read by the
ECS and Auto Scaling products too. Creation and deletion take effect at once (Status "Available"),
where Alibaba passes through "Pending" for a few seconds; waiters see the final state directly.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from .. import ids, instances, network, scaling_groups
from ..clock import iso_seconds
from ..errors import ApiError
from ..params import Params
from ..registry import Request, action

if TYPE_CHECKING:
    from ..cloud import Cloud

DEFAULT_VPC_CIDR = "172.16.0.0/12"
# Alibaba reserves the first and the last three addresses of every vSwitch.
RESERVED_ADDRESSES = 4
MAX_PAGE_SIZE = 50

Network = ipaddress.IPv4Network


# -- helpers ---------------------------------------------------------------------------------
def _network(text: str, min_prefix: int, max_prefix: int, what: str) -> Network:
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        raise ApiError("InvalidCidrBlock.Malformed",
                       f"Specified CIDR block {text!r} is not valid: give a network address such as "
                       "192.168.0.0/16.") from None
    if not min_prefix <= net.prefixlen <= max_prefix:
        raise ApiError("InvalidCidrBlock.Malformed",
                       f"The {what} CIDR block {text} must have a mask between /{min_prefix} and /{max_prefix}.")
    return net


def _name(params: Params, field: str, code: str) -> str | None:
    """Alibaba's naming rule: 1-128 characters, starting with a letter, not with http(s)://."""
    value = params.str(field)
    if value is None:
        return None
    if len(value) > 128 or not value[0].isalpha() or value.startswith(("http://", "https://")):
        raise ApiError(code, f"The {field} {value!r} is not valid: 1 to 128 characters starting with a letter, "
                       "not with http:// or https://.")
    return value


def _description(params: Params) -> str | None:
    value = params.str("Description")
    if value is not None and (len(value) > 256 or value.startswith(("http://", "https://"))):
        raise ApiError("InvalidDescription.Malformed",
                       "The description must be at most 256 characters and not start with http:// or https://.")
    return value


def _tags_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {"Tag": [{"Key": t["Key"], "Value": t["Value"]} for t in doc.get("Tags", [])]}


def _has_tags(doc: dict[str, Any], wanted: list[dict[str, str]]) -> bool:
    have = {(t["Key"], t["Value"]) for t in doc.get("Tags", [])}
    return all((t["Key"], t["Value"]) in have for t in wanted)


def _ids(params: Params, name: str) -> list[str] | None:
    """A filter given as a comma-separated list of ids (Alibaba's form for VpcId and VSwitchId)."""
    value = params.str(name)
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _paged(params: Params, items: list[dict[str, Any]], view: Any) -> tuple[list[dict[str, Any]], dict[str, int]]:
    number = params.int("PageNumber", 1, minimum=1)
    size = params.int("PageSize", 10, minimum=1, maximum=MAX_PAGE_SIZE)
    page = items[(number - 1) * size:number * size]
    return [view(item) for item in page], {"TotalCount": len(items), "PageNumber": number, "PageSize": size}


def get_vpc(cloud: Cloud, vpc_id: str) -> dict[str, Any]:
    vpc = network.VPC.find(cloud.store, vpc_id)
    if vpc is None:
        raise ApiError("InvalidVpcId.NotFound", f"Specified VPC {vpc_id} does not exist.", 404)
    return vpc


def get_vswitch(cloud: Cloud, vswitch_id: str) -> dict[str, Any]:
    vswitch = network.VSWITCH.find(cloud.store, vswitch_id)
    if vswitch is None:
        raise ApiError("InvalidVSwitchId.NotFound", f"Specified vSwitch {vswitch_id} does not exist.", 404)
    return vswitch


# -- VPCs ------------------------------------------------------------------------------------
def _vpc_view(cloud: Cloud, vpc: dict[str, Any]) -> dict[str, Any]:
    view = {k: vpc[k] for k in ("VpcId", "VpcName", "Description", "CidrBlock", "Status", "RegionId",
                                "CreationTime", "VRouterId", "IsDefault", "OwnerId", "ResourceGroupId")}
    view["VSwitchIds"] = {"VSwitchId": [v["VSwitchId"] for v in network.vswitches_of(cloud.store, vpc["VpcId"])]}
    view["RouterTableIds"] = {"RouterTableIds": [vpc["RouteTableId"]]}
    view["Tags"] = _tags_view(vpc)
    return view


@action("vpc", "CreateVpc")
def create_vpc(cloud: Cloud, req: Request) -> dict:
    p = req.params
    cidr = _network(p.str("CidrBlock", DEFAULT_VPC_CIDR), 8, 28, "VPC")
    name = _name(p, "VpcName", "InvalidVpcName.Malformed") or ""
    description = _description(p) or ""
    if p.bool("DryRun", False):
        raise _dry_run_ok()
    region = cloud.settings.region
    vpc = {
        "VpcId": ids.new_id("vpc", region), "VRouterId": ids.new_id("vrt", region),
        "RouteTableId": ids.new_id("vtb", region), "VpcName": name, "Description": description,
        "CidrBlock": str(cidr), "Status": "Available", "RegionId": region, "IsDefault": False,
        "CreationTime": iso_seconds(cloud.clock.now()), "OwnerId": int(cloud.account_uid),
        "ResourceGroupId": p.str("ResourceGroupId", ""), "Tags": p.tags("Tag"),
    }
    network.VPC.save(cloud.store, vpc)
    return {k: vpc[k] for k in ("VpcId", "VRouterId", "RouteTableId", "ResourceGroupId")}


@action("vpc", "DescribeVpcs")
def describe_vpcs(cloud: Cloud, req: Request) -> dict:
    p = req.params
    wanted_ids = _ids(p, "VpcId")
    name = p.str("VpcName")
    is_default = p.bool("IsDefault")
    tags = p.tags("Tag")

    def matches(vpc: dict[str, Any]) -> bool:
        return ((wanted_ids is None or vpc["VpcId"] in wanted_ids) and name in (None, vpc["VpcName"])
                and is_default in (None, vpc["IsDefault"]) and _has_tags(vpc, tags))

    vpcs, paging = _paged(p, network.VPC.all(cloud.store, matches), lambda v: _vpc_view(cloud, v))
    return {"Vpcs": {"Vpc": vpcs}, **paging}


@action("vpc", "DescribeVpcAttribute")
def describe_vpc_attribute(cloud: Cloud, req: Request) -> dict:
    view = _vpc_view(cloud, get_vpc(cloud, req.params.str("VpcId", required=True)))
    view.pop("RouterTableIds")
    return view


@action("vpc", "ModifyVpcAttribute")
def modify_vpc_attribute(cloud: Cloud, req: Request) -> dict:
    p = req.params
    vpc = get_vpc(cloud, p.str("VpcId", required=True))
    name = _name(p, "VpcName", "InvalidVpcName.Malformed")
    if name is not None:
        vpc["VpcName"] = name
    description = _description(p)
    if description is not None:
        vpc["Description"] = description
    cidr_text = p.str("CidrBlock")
    if cidr_text is not None:
        cidr = _network(cidr_text, 8, 28, "VPC")
        for vswitch in network.vswitches_of(cloud.store, vpc["VpcId"]):
            if not ipaddress.IPv4Network(vswitch["CidrBlock"]).subnet_of(cidr):
                raise ApiError("InvalidCidrBlock.Malformed",
                               f"The new CIDR block {cidr} must contain the vSwitch {vswitch['VSwitchId']} "
                               f"({vswitch['CidrBlock']}).")
        vpc["CidrBlock"] = str(cidr)
    network.VPC.save(cloud.store, vpc)
    return {}


@action("vpc", "DeleteVpc")
def delete_vpc(cloud: Cloud, req: Request) -> dict:
    vpc = get_vpc(cloud, req.params.str("VpcId", required=True))
    vpc_id = vpc["VpcId"]
    if network.vswitches_of(cloud.store, vpc_id):
        raise ApiError("DependencyViolation.VSwitch",
                       f"Specified object has dependent resources: the VPC {vpc_id} still has vSwitches; "
                       "delete them first.")
    if network.security_groups_of(cloud.store, vpc_id):
        raise ApiError("DependencyViolation.SecurityGroup",
                       f"Specified object has dependent resources: the VPC {vpc_id} still has security groups; "
                       "delete them first.")
    if req.params.bool("DryRun", False):
        raise _dry_run_ok()
    network.VPC.delete(cloud.store, vpc_id)
    return {}


def _dry_run_ok() -> ApiError:
    return ApiError("DryRunOperation", "Request validation has been passed with DryRun flag set.")


# -- vSwitches -------------------------------------------------------------------------------
def _available_ips(cloud: Cloud, vswitch: dict[str, Any]) -> int:
    size = ipaddress.IPv4Network(vswitch["CidrBlock"]).num_addresses - RESERVED_ADDRESSES
    used = len(instances.in_vswitch(cloud.store, vswitch["VSwitchId"]))
    return max(0, size - used)


def _vswitch_view(cloud: Cloud, vswitch: dict[str, Any]) -> dict[str, Any]:
    view = {k: vswitch[k] for k in ("VSwitchId", "VSwitchName", "Description", "VpcId", "ZoneId", "CidrBlock",
                                    "Status", "CreationTime", "IsDefault", "OwnerId", "ResourceGroupId")}
    view["AvailableIpAddressCount"] = _available_ips(cloud, vswitch)
    view["RouteTable"] = {"RouteTableId": vswitch["RouteTableId"], "RouteTableType": "System"}
    view["ShareType"] = "Private"
    view["Tags"] = _tags_view(vswitch)
    return view


def _check_vswitch_cidr(cloud: Cloud, vpc: dict[str, Any], text: str) -> Network:
    cidr = _network(text, 16, 29, "vSwitch")
    if not cidr.subnet_of(ipaddress.IPv4Network(vpc["CidrBlock"])):
        raise ApiError("InvalidParameter",
                       f"Specified CIDR block {cidr} is not valid in VPC {vpc['VpcId']}: it must lie inside "
                       f"{vpc['CidrBlock']}.")
    for other in network.vswitches_of(cloud.store, vpc["VpcId"]):
        if cidr.overlaps(ipaddress.IPv4Network(other["CidrBlock"])):
            raise ApiError("InvalidCidrBlock.Overlapped",
                           f"Specified CIDR block {cidr} overlapped with the vSwitch {other['VSwitchId']} "
                           f"({other['CidrBlock']}); choose a free range.")
    return cidr


@action("vpc", "CreateVSwitch")
def create_vswitch(cloud: Cloud, req: Request) -> dict:
    p = req.params
    vpc = get_vpc(cloud, p.str("VpcId", required=True))
    zone = p.str("ZoneId", required=True)
    cloud.market.check(zone, None)
    cidr = _check_vswitch_cidr(cloud, vpc, p.str("CidrBlock", required=True))
    name = _name(p, "VSwitchName", "InvalidVSwitchName.Malformed") or ""
    description = _description(p) or ""
    if p.bool("DryRun", False):
        raise _dry_run_ok()
    vswitch = {
        "VSwitchId": ids.new_id("vsw", cloud.settings.region), "VpcId": vpc["VpcId"], "ZoneId": zone,
        "CidrBlock": str(cidr), "VSwitchName": name, "Description": description, "Status": "Available",
        "CreationTime": iso_seconds(cloud.clock.now()), "RegionId": cloud.settings.region,
        "RouteTableId": vpc["RouteTableId"], "IsDefault": False, "OwnerId": int(cloud.account_uid),
        "ResourceGroupId": vpc["ResourceGroupId"], "Tags": p.tags("Tag"),
    }
    network.VSWITCH.save(cloud.store, vswitch)
    return {"VSwitchId": vswitch["VSwitchId"]}


@action("vpc", "DescribeVSwitches")
def describe_vswitches(cloud: Cloud, req: Request) -> dict:
    p = req.params
    wanted_ids = _ids(p, "VSwitchId")
    filters = {field: p.str(field) for field in ("VpcId", "ZoneId", "VSwitchName")}
    is_default = p.bool("IsDefault")
    tags = p.tags("Tag")

    def matches(vswitch: dict[str, Any]) -> bool:
        return ((wanted_ids is None or vswitch["VSwitchId"] in wanted_ids)
                and all(value in (None, vswitch[field]) for field, value in filters.items())
                and is_default in (None, vswitch["IsDefault"]) and _has_tags(vswitch, tags))

    vswitches, paging = _paged(p, network.VSWITCH.all(cloud.store, matches), lambda v: _vswitch_view(cloud, v))
    return {"VSwitches": {"VSwitch": vswitches}, **paging}


@action("vpc", "DescribeVSwitchAttributes")
def describe_vswitch_attributes(cloud: Cloud, req: Request) -> dict:
    return _vswitch_view(cloud, get_vswitch(cloud, req.params.str("VSwitchId", required=True)))


@action("vpc", "ModifyVSwitchAttribute")
def modify_vswitch_attribute(cloud: Cloud, req: Request) -> dict:
    p = req.params
    vswitch = get_vswitch(cloud, p.str("VSwitchId", required=True))
    name = _name(p, "VSwitchName", "InvalidVSwitchName.Malformed")
    if name is not None:
        vswitch["VSwitchName"] = name
    description = _description(p)
    if description is not None:
        vswitch["Description"] = description
    network.VSWITCH.save(cloud.store, vswitch)
    return {}


def _vswitch_users(cloud: Cloud, vswitch_id: str) -> list[str]:
    members = instances.in_vswitch(cloud.store, vswitch_id)
    groups = scaling_groups.in_vswitch(cloud.store, vswitch_id)
    return [i["InstanceId"] for i in members] + [g.get("ScalingGroupId", "") for g in groups]


@action("vpc", "DeleteVSwitch")
def delete_vswitch(cloud: Cloud, req: Request) -> dict:
    vswitch = get_vswitch(cloud, req.params.str("VSwitchId", required=True))
    users = _vswitch_users(cloud, vswitch["VSwitchId"])
    if users:
        raise ApiError("DependencyViolation",
                       f"Specified object has dependent resources: the vSwitch {vswitch['VSwitchId']} is used by "
                       f"{', '.join(users)}; release or move them first.")
    if req.params.bool("DryRun", False):
        raise _dry_run_ok()
    network.VSWITCH.delete(cloud.store, vswitch["VSwitchId"])
    return {}


# -- zones -----------------------------------------------------------------------------------
@action("vpc", "DescribeZones")
def describe_zones(cloud: Cloud, req: Request) -> dict:
    return {"Zones": {"Zone": [{"ZoneId": zone, "LocalName": zone, "ZoneType": "AvailabilityZone"}
                               for zone in cloud.market.zones]}}
