#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_image
short_description: Create a custom image from an instance, or delete it
description:
  - Creates a custom image from an ECS instance and waits until it is C(Available), or deletes
    the image. The image is found by its name among the account's own images.
  - The description is updated in place; an image is a snapshot, so an existing image is never
    re-created from another instance; give a new name for a new bake.
options:
  name:
    description: The image name; it identifies the image.
    type: str
    required: true
    aliases: [image_name]
  instance_id:
    description: The instance to make the image from. Required to create.
    type: str
  description:
    description: The description.
    type: str
  force:
    description: With O(state=absent), delete even while instances use the image.
    type: bool
    default: false
  state:
    description: Whether the image should exist.
    type: str
    choices: [present, absent]
    default: present
  wait:
    description: Wait until the image is C(Available) (or gone).
    type: bool
    default: true
  wait_timeout:
    description: How long to wait, in seconds.
    type: int
    default: 1800
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Bake the training image from the template instance
  alicloud_image:
    name: ess-lora-deepseek7b-v1
    instance_id: "{{ template.instance.instance_id }}"
"""

RETURN = r"""
image:
  description: The image (empty when absent).
  returned: always
  type: dict
  contains:
    image_id: {description: The id., type: str, sample: m-bp1abc}
    image_name: {description: The name., type: str}
    status: {description: The status., type: str, sample: Available}
    progress: {description: Creation progress., type: str, sample: 100%}
"""

from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_ecs import IMAGE_GONE  # noqa: E402

STATUSES = "Creating,Waiting,Available,UnAvailable,CreateFailed"


def find_image(module: AlicloudModule, name: str) -> dict[str, Any] | None:
    body = module.call("ecs", "DescribeImages", {"RegionId": module.region, "ImageName": name,
                                                 "ImageOwnerAlias": "self", "Status": STATUSES,
                                                 "PageSize": 100}) or {}
    found = [i for i in (body.get("Images") or {}).get("Image", []) if i.get("ImageName") == name]
    return found[0] if found else None


def wait_available(module: AlicloudModule, name: str) -> dict[str, Any]:
    return module.wait(lambda: find_image(module, name), lambda i: bool(i) and i.get("Status") == "Available",
                       timeout=module.params["wait_timeout"], what=f"the image {name} to be Available",
                       failed=lambda i: f"it is {i['Status']} at {i.get('Progress')}" if i and i.get("Status") in (
                           "CreateFailed", "UnAvailable") else ("it disappeared" if i is None else None))


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        name=dict(type="str", required=True, aliases=["image_name"]),
        instance_id=dict(type="str"),
        description=dict(type="str"),
        force=dict(type="bool", default=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=1800),
    ))
    p = module.params
    module.check_region()
    before = find_image(module, p["name"])
    if p["state"] == "absent":
        if before is not None and not module.check_mode:
            module.call("ecs", "DeleteImage", {"RegionId": module.region, "ImageId": before["ImageId"],
                                               "Force": p["force"] or None}, missing_ok=IMAGE_GONE)
            if p["wait"]:
                module.wait(lambda: find_image(module, p["name"]), lambda i: i is None, timeout=p["wait_timeout"],
                            what=f"the image {p['name']} to be deleted")
        module.exit_resource(before is not None, "image", before, None)
    if before is None:
        if not p.get("instance_id"):
            module.fail_json(msg=f"To create the image {p['name']} give instance_id.")
        if module.check_mode:
            module.exit_resource(True, "image", None, {"ImageName": p["name"], "Status": "Creating"})
        module.call("ecs", "CreateImage", {"RegionId": module.region, "InstanceId": p["instance_id"],
                                           "ImageName": p["name"], "Description": p.get("description")})
        after = wait_available(module, p["name"]) if p["wait"] else find_image(module, p["name"])
        module.exit_resource(True, "image", None, after)
    changed = p.get("description") is not None and p["description"] != (before.get("Description") or "")
    if changed and not module.check_mode:
        module.call("ecs", "ModifyImageAttribute", {"RegionId": module.region, "ImageId": before["ImageId"],
                                                    "Description": p["description"]})
    after = before
    if p["wait"] and before.get("Status") != "Available" and not module.check_mode:
        after = wait_available(module, p["name"])
    elif changed:
        after = {**before, "Description": p["description"]} if module.check_mode else find_image(module, p["name"])
    module.exit_resource(changed, "image", before, after)


if __name__ == "__main__":
    main()
