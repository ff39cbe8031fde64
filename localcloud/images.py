"""The records of ECS images: the public system images and the custom images captured from instances.

This module owns the `image` records (keyed by ImageId): the ECS and Auto Scaling APIs and the
containers backend read and write them through it. The public system images are registered when a
cloud starts (`ensure_system_images`); custom images come from CreateImage (products/ecs_images.py).
The podman image that container instances boot is another thing (localcloud.backends.podman_image).
"""

from __future__ import annotations

from typing import Any

from .clock import iso_seconds
from .store import Kind, Store

Doc = dict[str, Any]

IMAGE = Kind("image", "ImageId")

SYSTEM_IMAGES: list[Doc] = [{
    "ImageId": "debian_12_x64_20G_alibase_localcloud.vhd",
    "ImageName": "debian_12_x64_20G_alibase_localcloud.vhd",
    "Description": "Debian 12 (bookworm) 64-bit, the localcloud base image",
    "OSName": "Debian 12 64 bit", "OSNameEn": "Debian 12 64 bit", "OSType": "linux",
    "Platform": "Debian", "Architecture": "x86_64", "Size": 20, "ImageFamily": "acs:debian_12_x64",
    "ImageVersion": "12",
}]


def ensure_system_images(store: Store, now: float) -> None:
    """Register the public system images once per state directory (safe to call at every start)."""
    with store.transaction():
        for spec in SYSTEM_IMAGES:
            if IMAGE.find(store, spec["ImageId"]) is None:
                IMAGE.save(store, {
                    **spec, "ImageOwnerAlias": "system", "ImageOwnerId": 0, "IsPublic": True,
                    "Status": "Available", "Progress": "100%", "CreationTime": iso_seconds(now),
                    "SourceInstanceId": "", "Tags": [],
                })


def is_custom(store: Store, image_id: str) -> bool:
    """True for an image captured from an instance; False for a system image or an unknown ImageId."""
    image = IMAGE.find(store, image_id) or {}
    return image.get("ImageOwnerAlias", "system") != "system"
