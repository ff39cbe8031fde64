"""ECS: RunInstances — validate a launch request against the store and the market, then launch
through `localcloud.instances.launch` (which owns the record, the ledger and the backend call).

Secrets: a Password is kept only as a salted PBKDF2 hash (`PasswordHash`) and never returned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import identities, instances, key_pairs, network
from ..errors import ApiError, invalid
from ..params import Params
from ..registry import Request, action
from .ecs_common import Record, dry_run, tags_param
from .ecs_images import get_image
from .ecs_market import DISK_CATEGORIES, DISK_MAX_GIB, DISK_MIN_GIB, SPOT_STRATEGIES
from .ecs_security_groups import get_group

if TYPE_CHECKING:
    from ..cloud import Cloud

MAX_AMOUNT = 100
USER_DATA_MAX_BYTES = 32 * 1024
PASSWORD_SPECIALS = "()`~!@#$%^&*-_+=|{}[]:;'<>,.?/"
HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,62}[A-Za-z0-9])?$")
# Public addresses come from the benchmarking range (RFC 2544): honest, and never routed anywhere.
PUBLIC_POOL = ipaddress.ip_network("198.18.0.0/15")
PBKDF2_ROUNDS = 200_000


@dataclass
class Placement:
    """Where the instances go: zone, VPC, vSwitch (with its CIDR) and security groups."""

    zone: str
    vpc_id: str
    vswitch_id: str
    cidr: str
    security_group_ids: list[str] = field(default_factory=list)


def hash_password(password: str) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), PBKDF2_ROUNDS).hex()
    return f"pbkdf2_sha256${PBKDF2_ROUNDS}${salt}${digest}"


def check_password(password: str) -> None:
    classes = [any(c.isupper() for c in password), any(c.islower() for c in password),
               any(c.isdigit() for c in password), any(c in PASSWORD_SPECIALS for c in password)]
    allowed = all(c.isalnum() or c in PASSWORD_SPECIALS for c in password)
    if not 8 <= len(password) <= 30 or sum(classes) < 3 or not allowed or password.startswith("/"):
        raise ApiError("InvalidPassword.Malformed", "The password must be 8 to 30 characters and contain at least "
                       f"three of: uppercase letters, lowercase letters, digits, special characters "
                       f"{PASSWORD_SPECIALS}; it may not start with /.")


def check_user_data(value: str | None) -> str:
    if not value:
        return ""
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("InvalidUserData.NotBase64", "UserData must be Base64-encoded.") from None
    if len(decoded) > USER_DATA_MAX_BYTES:
        raise ApiError("InvalidUserData.SizeExceeded", f"UserData may be at most {USER_DATA_MAX_BYTES} bytes "
                       "before encoding.")
    return value


def check_names(p: Params) -> None:
    name = p.str("InstanceName")
    if name is not None and (not 2 <= len(name) <= 128 or name.startswith(("http://", "https://"))):
        raise ApiError("InvalidInstanceName.Malformed", "InstanceName must be 2 to 128 characters and not start "
                       "with http:// or https://.")
    host = p.str("HostName")
    if host is not None and not HOSTNAME_RE.match(host):
        raise ApiError("InvalidHostName.Malformed", "HostName must be 2 to 64 characters: letters, digits, '.' "
                       "and '-', not starting or ending with '.' or '-'.")


def _trusts_ecs(document: Any) -> bool:
    """Whether a role's trust policy lets ECS instances assume it."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return False
    text = json.dumps(document) if document else ""
    return "ecs.aliyuncs.com" in text


def check_ecs_role(cloud: Cloud, name: str) -> Record:
    """An existing RAM role that ECS may assume."""
    role = identities.role(cloud.store, name)
    if role is None:
        raise ApiError("InvalidRamRole.NotFound", f"The RAM role {name} does not exist; create it with RAM "
                       "CreateRole first.", 404)
    document = role.get("AssumeRolePolicyDocument")
    if document and not _trusts_ecs(document):
        raise ApiError("InvalidRamRole.NotEcsRole", f"The RAM role {name} does not trust the ECS service: its "
                       "trust policy needs Principal Service ecs.aliyuncs.com.")
    return role


def security_group_ids(p: Params) -> list[str]:
    given = [g for g in p.list("SecurityGroupIds") if g]
    single = p.str("SecurityGroupId")
    if single and single not in given:
        given.insert(0, single)
    return given


def check_security_groups(cloud: Cloud, group_ids: list[str], vpc_id: str) -> list[str]:
    if not group_ids:
        raise ApiError("MissingParameter.SecurityGroupId", "Specify SecurityGroupId or SecurityGroupIds.N.")
    if len(group_ids) > 5:
        raise invalid("SecurityGroupIds", "An instance can join at most 5 security groups.")
    for group_id in group_ids:
        group = get_group(cloud, group_id)
        if group["VpcId"] != vpc_id:
            raise ApiError("InvalidSecurityGroupId.VpcMismatch", f"The security group {group_id} belongs to "
                           f"{group['VpcId']}, not to the vSwitch's VPC {vpc_id}.")
    return group_ids


def resolve_placement(cloud: Cloud, p: Params) -> Placement:
    vswitch_id = p.str("VSwitchId")
    if not vswitch_id:
        raise ApiError("MissingParameter.VSwitchId", "Specify VSwitchId: localcloud has VPC instances only.")
    vswitch = network.VSWITCH.find(cloud.store, vswitch_id)
    if vswitch is None:
        raise ApiError("InvalidVSwitchId.NotFound", f"The specified vSwitch {vswitch_id} does not exist.", 404)
    if vswitch.get("Status", "Available") != "Available":
        raise ApiError("IncorrectVSwitchStatus", f"The vSwitch {vswitch_id} is {vswitch['Status']}; wait until "
                       "it is Available.")
    zone = vswitch["ZoneId"]
    asked_zone = p.str("ZoneId")
    if asked_zone and asked_zone != zone:
        raise ApiError("InvalidParameter.Mismatch", f"The vSwitch {vswitch_id} is in zone {zone}, not in "
                       f"{asked_zone}; omit ZoneId or pick a vSwitch of that zone.")
    groups = check_security_groups(cloud, security_group_ids(p), vswitch["VpcId"])
    return Placement(zone, vswitch["VpcId"], vswitch_id, vswitch["CidrBlock"], groups)


def _used_addresses(cloud: Cloud, field_name: str) -> set[str]:
    return {i[field_name] for i in instances.INSTANCE.all(cloud.store) if i.get(field_name)}


def _usable_range(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> range:
    # Alibaba reserves the first and the last three addresses of every vSwitch CIDR block.
    return range(int(network.network_address) + 1, int(network.broadcast_address) - 3 + 1)


def _free_hosts(network: ipaddress.IPv4Network | ipaddress.IPv6Network, used: set[str]) -> Iterator[str]:
    for number in _usable_range(network):
        address = str(ipaddress.ip_address(number))
        if address not in used:
            yield address


def private_addresses(cloud: Cloud, placement: Placement, count: int, wanted: str | None) -> list[str]:
    network = ipaddress.ip_network(placement.cidr, strict=False)
    used = _used_addresses(cloud, "PrivateIpAddress")
    if wanted:
        if count != 1:
            raise invalid("PrivateIpAddress", "A fixed private IP works with Amount=1 only.")
        try:
            usable = int(ipaddress.ip_address(wanted)) in _usable_range(network)
        except ValueError:
            usable = False
        if not usable:
            raise ApiError("InvalidPrivateIpAddress.Malformed", f"{wanted} is not a usable address of "
                           f"{placement.vswitch_id} ({placement.cidr}).")
        if wanted in used:
            raise ApiError("InvalidPrivateIpAddress.Duplicated", f"{wanted} is already used in "
                           f"{placement.vswitch_id}.")
        return [wanted]
    found = instances.choose_addresses(cloud.store, _free_hosts(network, used), count)
    if len(found) < count:
        raise ApiError("InvalidVSwitchId.IpNotEnough", f"The vSwitch {placement.vswitch_id} ({placement.cidr}) "
                       f"has {len(found)} free addresses; {count} are needed.")
    return found


def public_addresses(cloud: Cloud, count: int) -> list[str]:
    free = _free_hosts(PUBLIC_POOL, _used_addresses(cloud, "PublicIpAddress"))
    return [address for _, address in zip(range(count), free, strict=False)]


@dataclass
class SpotRequest:
    strategy: str
    price_limit: float
    duration: int
    interruption: str


def spot_request(p: Params) -> SpotRequest:
    strategy = p.str("SpotStrategy", "NoSpot", choices=SPOT_STRATEGIES) or "NoSpot"
    limit = p.float("SpotPriceLimit", 0.0) or 0.0
    if strategy == "SpotWithPriceLimit" and limit <= 0:
        raise ApiError("MissingParameter.SpotPriceLimit", "SpotWithPriceLimit needs SpotPriceLimit (RMB per hour).")
    spot = strategy != "NoSpot"
    # A spot instance is protected for one hour unless SpotDuration=0 asks for none.
    duration = p.int("SpotDuration", 1 if spot else 0, minimum=0, maximum=1) if spot else 0
    interruption = p.str("SpotInterruptionBehavior", "Terminate", choices=("Terminate", "Stop")) or "Terminate"
    return SpotRequest(strategy, limit if strategy == "SpotWithPriceLimit" else 0.0, duration or 0, interruption)


def launch_count(cloud: Cloud, p: Params, zone: str, itype: str, spot: SpotRequest) -> int:
    """How many instances to launch: Amount, or fewer (down to MinAmount) when spot stock is short."""
    amount = p.int("Amount", 1, minimum=1, maximum=MAX_AMOUNT) or 1
    minimum = p.int("MinAmount", amount, minimum=1, maximum=amount) or amount
    if spot.strategy == "NoSpot":
        return amount
    offer = cloud.market.offer(zone, itype)
    if spot.strategy == "SpotWithPriceLimit" and spot.price_limit < offer.spot_price:
        raise ApiError("InvalidSpotPriceLimit.LowerThanPublicPrice", f"The specified SpotPriceLimit "
                       f"{spot.price_limit} is lower than the current spot price {offer.spot_price} of {itype} in "
                       f"{zone}; raise the limit or use SpotAsPriceGo.")
    free = cloud.market.spot_free(zone, itype)
    if free < minimum:
        raise ApiError("OperationDenied.NoStock", f"The requested resource is sold out in the specified zone: "
                       f"{free} spot {itype} instance(s) left in {zone}, {minimum} requested; try other types of "
                       "resources or other zones.", 403)
    return min(amount, free)


def system_disk(p: Params, image: Record) -> dict[str, Any]:
    disk = p.nested("SystemDisk")
    category = disk.get("Category") or "cloud_essd"
    if category not in DISK_CATEGORIES:
        raise invalid("SystemDisk.Category", f"Valid values: {', '.join(DISK_CATEGORIES)}.")
    size = Params(disk).int("Size", max(40, int(image.get("Size", 20))), minimum=DISK_MIN_GIB, maximum=DISK_MAX_GIB)
    if size < int(image.get("Size", 0)):
        raise ApiError("InvalidSystemDiskSize.LessThanImageSize", f"SystemDisk.Size {size} GiB is smaller than the "
                       f"image ({image['Size']} GiB).")
    return {"Category": category, "Size": size}


def check_launchable_image(cloud: Cloud, image_id: str | None) -> Record:
    image = get_image(cloud, image_id)
    if image["Status"] != "Available":
        raise ApiError("IncorrectImageStatus", f"The image {image['ImageId']} is {image['Status']}; instances "
                       "launch from Available images only.")
    return image


def build_spec(cloud: Cloud, p: Params) -> tuple[dict[str, Any], int, Placement]:
    """Validate everything RunInstances needs; returns the launch spec, the count and the placement."""
    charge = p.str("InstanceChargeType", "PostPaid", choices=("PostPaid", "PrePaid"))
    if charge == "PrePaid":
        raise ApiError("InvalidInstanceChargeType.ValueNotSupported", "localcloud sells pay-as-you-go (PostPaid) "
                       "and spot instances only; subscriptions (PrePaid) are not offered.")
    image = check_launchable_image(cloud, p.str("ImageId", required=True))
    itype = p.str("InstanceType", required=True)
    cloud.market.check(p.str("ZoneId"), itype)
    placement = resolve_placement(cloud, p)
    check_names(p)
    role = p.str("RamRoleName")
    if role:
        role = check_ecs_role(cloud, role)["RoleName"]
    password = p.str("Password")
    if password:
        check_password(password)
    spot = spot_request(p)
    bandwidth = p.int("InternetMaxBandwidthOut", 0, minimum=0, maximum=100) or 0
    spec = {
        "ZoneId": placement.zone, "InstanceType": itype, "ImageId": image["ImageId"],
        "InstanceName": p.str("InstanceName"), "HostName": p.str("HostName"),
        "Description": p.str("Description", ""), "VpcId": placement.vpc_id, "VSwitchId": placement.vswitch_id,
        "SecurityGroupIds": placement.security_group_ids, "InternetMaxBandwidthOut": bandwidth,
        "SpotStrategy": spot.strategy, "SpotPriceLimit": spot.price_limit, "SpotDuration": spot.duration,
        "SpotInterruptionBehavior": spot.interruption, "RamRoleName": role or "",
        "UserData": check_user_data(p.str("UserData")), "KeyPairName": key_pairs.check_launch(
            cloud.store, p.str("KeyPairName"), 'The specified parameter "KeyPairName" does not exist in our records.'),
        "SystemDisk": system_disk(p, image), "Tags": tags_param(p),
    }
    return spec, launch_count(cloud, p, placement.zone, itype, spot), placement


@action("ecs", "RunInstances")
def run_instances(cloud: Cloud, req: Request) -> dict:
    p = req.params
    spec, count, placement = build_spec(cloud, p)
    private = private_addresses(cloud, placement, count, p.str("PrivateIpAddress"))
    public = public_addresses(cloud, count) if spec["InternetMaxBandwidthOut"] > 0 else [""] * count
    dry_run(p)
    password = p.str("Password")
    launched = []
    for private_ip, public_ip in zip(private, public, strict=True):
        instance = instances.launch(cloud, {**spec, "PrivateIpAddress": private_ip, "PublicIpAddress": public_ip})
        if password:
            instances.INSTANCE.update(cloud.store, instance["InstanceId"], PasswordHash=hash_password(password))
        launched.append(instance)
    return {
        "InstanceIdSets": {"InstanceIdSet": [i["InstanceId"] for i in launched]},
        "OrderId": "", "TradePrice": round(sum(i["PricePerHour"] for i in launched), 6),
    }

