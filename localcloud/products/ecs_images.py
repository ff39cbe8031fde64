"""ECS: the image API (CreateImage, DescribeImages, DeleteImage, ModifyImageAttribute).

The `image` records belong to localcloud.images, which also registers the public system images.
Custom images come from CreateImage, which asks the instance backend to capture the instance and
moves the image from Creating to Available as the backend reports progress (a ticker).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .. import ids, images, instances, scaling_groups
from ..clock import iso_seconds
from ..errors import ApiError, invalid, missing
from ..registry import Request, action, ticker
from .ecs_common import Record, dry_run, matches_tags, page, render_tags, tags_param

if TYPE_CHECKING:
    from ..cloud import Cloud

log = logging.getLogger("localcloud.ecs.images")

IMAGE_STATUSES = ("Creating", "Waiting", "Available", "UnAvailable", "CreateFailed", "Deprecated")


def get_image(cloud: Cloud, image_id: str | None) -> Record:
    if not image_id:
        raise missing("ImageId")
    image = images.IMAGE.find(cloud.store, image_id)
    if image is None:
        raise ApiError("InvalidImageId.NotFound", f"The specified ImageId {image_id} does not exist.", 404)
    return image


def _name_taken(cloud: Cloud, name: str) -> bool:
    return bool(images.IMAGE.all(cloud.store, lambda i: i["ImageOwnerAlias"] == "self" and i["ImageName"] == name))


def _check_image_name(cloud: Cloud, name: str) -> None:
    if len(name) < 2 or len(name) > 128 or name.startswith(("http://", "https://", "aliyun", "acs:")):
        raise ApiError("InvalidImageName.Malformed", "ImageName must be 2 to 128 characters and not start with "
                       "http://, https://, aliyun or acs:.")
    if _name_taken(cloud, name):
        raise ApiError("InvalidImageName.Duplicated", f"The specified image name {name!r} is already in use; "
                       "choose another name or delete the old image.")


@action("ecs", "CreateImage")
def create_image(cloud: Cloud, req: Request) -> dict:
    p = req.params
    instance_id = p.str("InstanceId")
    if not instance_id:
        raise ApiError("MissingParameter.InstanceId", "CreateImage needs InstanceId: localcloud captures images "
                       "from instances only (no snapshots).")
    instance = instances.INSTANCE.find(cloud.store, instance_id)
    if instance is None:
        raise ApiError("InvalidInstanceId.NotFound", f"The specified instance {instance_id} does not exist.", 404)
    if instance["Status"] not in ("Running", "Stopped"):
        raise ApiError("IncorrectInstanceStatus", f"The current status of the resource does not support this "
                       f"operation: {instance_id} is {instance['Status']}; images are created from Running or "
                       "Stopped instances.", 403)
    name = p.str("ImageName")
    image_id = ids.new_id("m", cloud.settings.region)
    if name:
        _check_image_name(cloud, name)
    tags = tags_param(p)
    dry_run(p)
    source = images.IMAGE.find(cloud.store, instance["ImageId"]) or {}
    image: Record = {
        "ImageId": image_id, "ImageName": name or image_id, "Description": p.str("Description", ""),
        "ImageOwnerAlias": "self", "ImageOwnerId": int(cloud.account_uid), "IsPublic": False,
        "Status": "Creating", "Progress": "0%", "CreationTime": iso_seconds(cloud.clock.now()),
        "OSName": source.get("OSName", ""), "OSNameEn": source.get("OSNameEn", ""),
        "OSType": source.get("OSType", "linux"), "Platform": p.str("Platform", source.get("Platform", "")),
        "Architecture": p.str("Architecture", source.get("Architecture", "x86_64")),
        "Size": int(instance.get("SystemDisk", {}).get("Size") or source.get("Size", 20)),
        "ImageFamily": p.str("ImageFamily", ""), "ImageVersion": p.str("ImageVersion", ""),
        "SourceInstanceId": instance_id, "SourceImageId": instance["ImageId"], "Tags": tags,
    }
    images.IMAGE.save(cloud.store, image)
    cloud.backend.create_image(instance, image)
    return {"ImageId": image_id}


@ticker
def advance_image_captures(cloud: Cloud) -> None:
    """Move Creating images along as the backend captures them."""
    for image in images.IMAGE.all(cloud.store, lambda i: i["Status"] == "Creating"):
        try:
            done = max(0, min(100, int(cloud.backend.image_progress(image))))
        except Exception:
            log.exception("capturing image %s failed", image["ImageId"])
            images.IMAGE.update(cloud.store, image["ImageId"], Status="CreateFailed")
            continue
        status = "Available" if done >= 100 else "Creating"
        if f"{done}%" != image["Progress"] or status != image["Status"]:
            images.IMAGE.update(cloud.store, image["ImageId"], Progress=f"{done}%", Status=status)


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _wanted(image: Record, image_ids: list[str], statuses: list[str], owner: str | None, name: str | None,
            tags: list[dict[str, str]]) -> bool:
    if image_ids and image["ImageId"] not in image_ids:
        return False
    if image["Status"] not in statuses:
        return False
    if owner and image["ImageOwnerAlias"] != owner:
        return False
    if name and image["ImageName"] != name:
        return False
    return matches_tags(image, tags)


def _in_use(cloud: Cloud, image_id: str) -> bool:
    return bool(instances.using_image(cloud.store, image_id))


def _render_image(cloud: Cloud, image: Record) -> dict[str, Any]:
    fields = ("ImageId", "ImageName", "Description", "Status", "Progress", "ImageOwnerAlias", "ImageOwnerId",
              "IsPublic", "OSName", "OSNameEn", "OSType", "Platform", "Architecture", "Size", "CreationTime",
              "ImageFamily", "ImageVersion")
    rendered: dict[str, Any] = {k: image.get(k, "") for k in fields}
    rendered.update({
        "Usage": "instance" if _in_use(cloud, image["ImageId"]) else "none", "Tags": render_tags(image),
        "IsSupportCloudinit": True, "IsSupportIoOptimized": True, "IsCopied": False, "IsSelfShared": "",
        "IsSubscribed": False, "Usable": True, "BootMode": "BIOS", "LoginAsNonRootSupported": False,
        "ProductCode": "", "SupplierName": "", "ResourceGroupId": "",
        "DiskDeviceMappings": {"DiskDeviceMapping": [{
            "Device": "/dev/xvda", "Size": str(image["Size"]), "Type": "system", "Format": "",
            "SnapshotId": "", "Progress": image["Progress"], "RemainTime": 0,
        }]},
    })
    return rendered


@action("ecs", "DescribeImages")
def describe_images(cloud: Cloud, req: Request) -> dict:
    p = req.params
    dry_run(p)
    owner = p.str("ImageOwnerAlias", choices=("system", "self", "others", "marketplace"))
    # Without Status, ECS lists only Available images.
    statuses = _split(p.str("Status")) or ["Available"]
    for status in statuses:
        if status not in IMAGE_STATUSES:
            raise invalid("Status", f"Valid values: {', '.join(IMAGE_STATUSES)}.")
    wanted = [i for i in images.IMAGE.all(cloud.store)
              if _wanted(i, _split(p.str("ImageId")), statuses, owner, p.str("ImageName"), p.tags("Tag"))]
    chunk, paging = page(p, wanted, default_size=10, max_size=100)
    return {"RegionId": cloud.settings.region, **paging, "Images": {"Image": [_render_image(cloud, i) for i in chunk]}}


def _scaling_configurations_using(cloud: Cloud, image_id: str) -> list[str]:
    configs = scaling_groups.configurations_using_image(cloud.store, image_id)
    return [c.get("ScalingConfigurationId", "?") for c in configs]


@action("ecs", "DeleteImage")
def delete_image(cloud: Cloud, req: Request) -> dict:
    p = req.params
    image = get_image(cloud, p.str("ImageId", required=True))
    image_id = image["ImageId"]
    if image["ImageOwnerAlias"] != "self":
        raise ApiError("OperationDenied", f"{image_id} is a public {image['ImageOwnerAlias']} image; only custom "
                       "images can be deleted.", 403)
    configs = _scaling_configurations_using(cloud, image_id)
    if configs:
        # Even Force does not help here: a scaling group would fail to launch instances later.
        raise ApiError("OperationDenied.ImageUsedByScalingConfiguration", f"The image {image_id} is used by "
                       f"scaling configuration(s) {', '.join(configs)}; change or delete them first.", 403)
    if _in_use(cloud, image_id) and not p.bool("Force", False):
        raise ApiError("ImageUsingByInstance", f"The specified image {image_id} has been used to create "
                       "instances. Query them with DescribeInstances, or pass Force=true.", 403)
    dry_run(p)
    images.IMAGE.delete(cloud.store, image_id)
    cloud.backend.delete_image(image)
    return {}


@action("ecs", "ModifyImageAttribute")
def modify_image_attribute(cloud: Cloud, req: Request) -> dict:
    p = req.params
    image = get_image(cloud, p.str("ImageId", required=True))
    if image["ImageOwnerAlias"] != "self":
        raise ApiError("OperationDenied", f"{image['ImageId']} is a public image; only custom images can be "
                       "modified.", 403)
    name = p.str("ImageName")
    if name and name != image["ImageName"]:
        _check_image_name(cloud, name)
        image["ImageName"] = name
    for field in ("Description", "ImageFamily"):
        value = p.str(field)
        if value is not None:
            image[field] = value
    status = p.str("Status", choices=("Deprecated", "Available"))
    if status and image["Status"] in ("Available", "Deprecated"):
        image["Status"] = status
    dry_run(p)
    images.IMAGE.save(cloud.store, image)
    return {}
