"""ECS: what can be bought where, and at what spot price (DescribeAvailableResource,
DescribeSpotPriceHistory, DescribeSpotAdvice, DescribeInstanceTypes).

Stock comes from the spot market (`cloud.market`); pay-as-you-go capacity is unlimited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import instances
from ..clock import iso_seconds, parse_iso
from ..config import InstanceTypeSpec
from ..errors import ApiError, invalid
from ..registry import Request, action, ticker
from .ecs_common import page_tokened

if TYPE_CHECKING:
    from ..cloud import Cloud

SPOT_STRATEGIES = ("NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo")
DISK_CATEGORIES = ("cloud_essd", "cloud_ssd", "cloud_efficiency", "cloud_auto", "cloud_essd_entry")
DISK_MIN_GIB, DISK_MAX_GIB = 20, 2048
# The GPU of each GPU family localcloud sells (Alibaba's gn7i carries an NVIDIA A10).
GPU_SPECS = {"ecs.gn7i": ("NVIDIA A10", 24.0)}
HISTORY_DEFAULT_SECONDS = 3 * 3600
HISTORY_MAX_SECONDS = 30 * 24 * 3600


def type_spec(cloud: Cloud, name: str) -> InstanceTypeSpec:
    cloud.market.check(None, name)
    return next(t for t in cloud.settings.instance_types if t.name == name)


def family(name: str) -> str:
    """`ecs.gn7i-c8g1.2xlarge` -> `ecs.gn7i`."""
    parts = name.split(".")
    return ".".join(parts[:2]).split("-")[0] if len(parts) > 1 else name


def gpu_spec(spec: InstanceTypeSpec) -> tuple[str, float]:
    """The GPU model and its memory (GiB) for a type, ("", 0) without GPUs."""
    if not spec.gpu:
        return "", 0.0
    return GPU_SPECS.get(family(spec.name), ("GPU", 0.0))


def has_stock(cloud: Cloud, zone: str, instance_type: str, spot: bool) -> bool:
    return not spot or cloud.market.spot_free(zone, instance_type) > 0


def _supported(value: str, in_stock: bool, **extra: Any) -> dict[str, Any]:
    return {"Value": value, "Status": "Available" if in_stock else "SoldOut",
            "StatusCategory": "WithStock" if in_stock else "WithoutStock", **extra}


def _resources(cloud: Cloud, destination: str, zone: str, types: list[str], spot: bool) -> list[dict[str, Any]]:
    """The AvailableResource entries of one zone for the requested destination resource."""
    if destination == "Zone":
        in_stock = any(has_stock(cloud, zone, t, spot) for t in types)
        return [{"Type": "Zone", "SupportedResources": {"SupportedResource": [_supported(zone, in_stock)]}}]
    if destination == "InstanceType":
        return [{"Type": "InstanceType", "SupportedResources": {"SupportedResource": [
            _supported(t, has_stock(cloud, zone, t, spot)) for t in types]}}]
    if destination == "SystemDisk":
        return [{"Type": "SystemDisk", "SupportedResources": {"SupportedResource": [
            _supported(c, True, Min=DISK_MIN_GIB, Max=DISK_MAX_GIB, Unit="GiB") for c in DISK_CATEGORIES]}}]
    if destination == "DataDisk":
        return [{"Type": "DataDisk", "SupportedResources": {"SupportedResource": [
            _supported(c, True, Min=DISK_MIN_GIB, Max=32768, Unit="GiB") for c in DISK_CATEGORIES]}}]
    if destination == "Network":
        return [{"Type": "Network", "SupportedResources": {"SupportedResource": [_supported("vpc", True)]}}]
    return [{"Type": "IoOptimized", "SupportedResources": {"SupportedResource": [_supported("optimized", True)]}}]


@action("ecs", "DescribeAvailableResource")
def describe_available_resource(cloud: Cloud, req: Request) -> dict:
    p = req.params
    destination = p.str("DestinationResource", required=True, choices=(
        "Zone", "IoOptimized", "InstanceType", "SystemDisk", "DataDisk", "Network"))
    charge = p.str("InstanceChargeType", "PostPaid", choices=("PostPaid", "PrePaid"))
    strategy = p.str("SpotStrategy", "NoSpot", choices=SPOT_STRATEGIES)
    spot = charge == "PostPaid" and strategy != "NoSpot"
    zone, itype = p.str("ZoneId"), p.str("InstanceType")
    cloud.market.check(zone, itype)
    zones = [zone] if zone else cloud.market.zones
    types = [itype] if itype else cloud.market.instance_types
    found = []
    for z in zones:
        resources = _resources(cloud, destination, z, types, spot)
        in_stock = any(r["Status"] == "Available" for res in resources
                       for r in res["SupportedResources"]["SupportedResource"])
        found.append({"RegionId": cloud.settings.region, "ZoneId": z,
                      "Status": "Available" if in_stock else "SoldOut",
                      "StatusCategory": "WithStock" if in_stock else "WithoutStock",
                      "AvailableResources": {"AvailableResource": resources}})
    return {"AvailableZones": {"AvailableZone": found}}


@ticker
def reclaim_outbid_instances(cloud: Cloud) -> None:
    """A SpotWithPriceLimit instance is reclaimed once the market price rises above its limit."""
    outbid = [i for i in instances.INSTANCE.all(cloud.store) if i.get("SpotStrategy") == "SpotWithPriceLimit"
              and i.get("ReclaimAt") is None and i["Status"] != "Stopped"]
    for instance in outbid:
        if instance["SpotPriceLimit"] < cloud.market.offer(instance["ZoneId"], instance["InstanceType"]).spot_price:
            instances.schedule_reclaim(cloud, instance["InstanceId"])


def _time_window(cloud: Cloud, start: str | None, end: str | None) -> tuple[float, float]:
    try:
        end_at = parse_iso(end) if end else cloud.clock.now()
        start_at = parse_iso(start) if start else end_at - HISTORY_DEFAULT_SECONDS
    except ValueError as err:
        raise ApiError("InvalidParameter.Time", f"{err}; use UTC like 2024-05-01T08:00:00Z.") from None
    if start_at > end_at:
        raise ApiError("InvalidParameter.Time", "StartTime must not be later than EndTime.")
    if end_at - start_at > HISTORY_MAX_SECONDS:
        raise ApiError("InvalidParameter.Time", "StartTime and EndTime may be at most 30 days apart.")
    return start_at, end_at


def price_points(cloud: Cloud, zone: str, itype: str, start: float, end: float) -> list[tuple[float, float]]:
    """(time, price) for the price in force at `start` and every change up to `end`."""
    spec = type_spec(cloud, itype)
    changes = cloud.market.price_changes(zone, itype)
    before = [c for c in changes if c[0] <= start]
    if before:
        opening = before[-1][1]
    elif changes:
        opening = spec.spot_price  # the list price, which the first recorded change replaced
    else:
        opening = cloud.market.offer(zone, itype).spot_price
    return [(start, opening)] + [c for c in changes if start < c[0] <= end]


@action("ecs", "DescribeSpotPriceHistory")
def describe_spot_price_history(cloud: Cloud, req: Request) -> dict:
    p = req.params
    p.str("NetworkType", required=True, choices=("vpc", "classic"))
    itype = p.str("InstanceType", required=True)
    zone = p.str("ZoneId")
    cloud.market.check(zone, itype)
    start, end = _time_window(cloud, p.str("StartTime"), p.str("EndTime"))
    on_demand = type_spec(cloud, itype).on_demand_price
    rows = []
    for z in [zone] if zone else cloud.market.zones:
        for at, price in price_points(cloud, z, itype, start, end):
            rows.append({"ZoneId": z, "InstanceType": itype, "IoOptimized": "optimized", "NetworkType": "vpc",
                         "SpotPrice": price, "OriginPrice": on_demand, "Timestamp": iso_seconds(at)})
    offset = p.int("Offset", 0, minimum=0)
    chunk = rows[offset:offset + 1000]
    next_offset = offset + len(chunk) if offset + len(chunk) < len(rows) else 0
    return {"Currency": "CNY", "NextOffset": next_offset, "SpotPrices": {"SpotPriceType": chunk}}


def _advised_types(cloud: Cloud, req: Request) -> list[InstanceTypeSpec]:
    p = req.params
    wanted = set(p.list("InstanceTypes"))
    specs = []
    for spec in cloud.settings.instance_types:
        gpu_model, _ = gpu_spec(spec)
        if wanted and spec.name not in wanted:
            continue
        if p.int("Cores") is not None and spec.cpu != p.int("Cores"):
            continue
        if p.float("Memory") is not None and spec.memory_gib != p.float("Memory"):
            continue
        if p.int("MinCores") is not None and spec.cpu < p.int("MinCores"):
            continue
        if p.float("MinMemory") is not None and spec.memory_gib < p.float("MinMemory"):
            continue
        if p.int("GpuAmount") is not None and spec.gpu != p.int("GpuAmount"):
            continue
        if p.str("GpuSpec") and gpu_model != p.str("GpuSpec"):
            continue
        if p.str("InstanceTypeFamily") and family(spec.name) != p.str("InstanceTypeFamily"):
            continue
        specs.append(spec)
    return specs


@action("ecs", "DescribeSpotAdvice")
def describe_spot_advice(cloud: Cloud, req: Request) -> dict:
    zone = req.params.str("ZoneId")
    cloud.market.check(zone, None)
    specs = _advised_types(cloud, req)
    zones = []
    for z in [zone] if zone else cloud.market.zones:
        advice = []
        for spec in specs:
            offer = cloud.market.offer(z, spec.name)
            # localcloud reclaims only when told to, so every type shows the lowest interruption band.
            advice.append({"InstanceType": spec.name, "InterruptionRate": 0.0, "InterruptRateDesc": "0-3%",
                           "AverageSpotDiscount": round(100 * offer.spot_price / offer.on_demand_price)})
        zones.append({"ZoneId": z, "AvailableSpotResources": {"AvailableSpotResource": advice}})
    return {"RegionId": cloud.settings.region, "AvailableSpotZones": {"AvailableSpotZone": zones}}


def render_type(spec: InstanceTypeSpec) -> dict[str, Any]:
    gpu_model, gpu_memory = gpu_spec(spec)
    return {
        "InstanceTypeId": spec.name, "InstanceTypeFamily": family(spec.name), "CpuCoreCount": spec.cpu,
        "MemorySize": float(spec.memory_gib), "GPUAmount": spec.gpu, "GPUSpec": gpu_model,
        "GPUMemorySize": gpu_memory, "CpuArchitecture": "X86", "InstanceCategory":
            "GPU-accelerated" if spec.gpu else "General-purpose",
        "InstanceFamilyLevel": "EnterpriseLevel", "EniQuantity": 4, "EniPrivateIpAddressQuantity": 10,
        "LocalStorageAmount": 0, "LocalStorageCapacity": 0, "NvmeSupport": "required",
        "SupportedBootModes": {"SupportedBootMode": ["BIOS", "UEFI"]},
    }


@action("ecs", "DescribeInstanceTypes")
def describe_instance_types(cloud: Cloud, req: Request) -> dict:
    p = req.params
    wanted = p.list("InstanceTypes")
    if len(wanted) > 10:
        raise invalid("InstanceTypes", "At most 10 instance types may be given.")
    families = set(p.list("InstanceTypeFamilies")) | ({p.str("InstanceTypeFamily")} - {None})
    specs = [render_type(s) for s in cloud.settings.instance_types
             if (not wanted or s.name in wanted) and (not families or family(s.name) in families)]
    chunk, paging = page_tokened(p, specs, default_size=100, max_size=1600)
    return {"NextToken": paging["NextToken"], "InstanceTypes": {"InstanceType": chunk}}
