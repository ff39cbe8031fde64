#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_oss_bucket
short_description: Manage an OSS bucket (ACL, storage class, tags)
description:
  - Creates an OSS bucket in O(region) with a private ACL by default, keeps its ACL and tags as
    asked, and deletes it.
  - A bucket is deleted only when empty, unless O(force=true), which first deletes every object
    and aborts every multipart upload.
  - The storage class and region of an existing bucket cannot change (OSS offers no such
    operation); the module fails and says so rather than replace a bucket holding data.
  - An invalid bucket name fails before anything is created.
options:
  name:
    description: The bucket name (3-63 lower-case letters, digits and hyphens).
    type: str
    required: true
    aliases: [bucket]
  acl:
    description: The bucket ACL.
    type: str
    choices: [private, public-read, public-read-write]
    default: private
  storage_class:
    description: The storage class (set at creation).
    type: str
    choices: [Standard, IA, Archive, ColdArchive, DeepColdArchive]
    default: Standard
  tags:
    description: Tags of the bucket. Tags not listed are removed unless O(purge_tags=false).
    type: dict
  purge_tags:
    description: Remove tags that O(tags) does not list.
    type: bool
    default: true
  force:
    description: With O(state=absent), delete the objects first.
    type: bool
    default: false
  state:
    description: Whether the bucket should exist.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Create the training bucket (private)
  alicloud_oss_bucket:
    name: ess-lora-deepseek7b-data
    tags:
      project: ess-lora-deepseek7b

- name: Delete the bucket and everything in it
  alicloud_oss_bucket:
    name: ess-lora-deepseek7b-data
    state: absent
    force: true
"""

RETURN = r"""
bucket:
  description: The bucket (empty when absent).
  returned: always
  type: dict
  contains:
    name: {description: The name., type: str}
    location: {description: The region as OSS writes it., type: str, sample: oss-cn-hangzhou}
    acl: {description: The ACL., type: str, sample: private}
    storage_class: {description: The storage class., type: str, sample: Standard}
    tags: {description: The tags., type: dict}
    versioning:
      description:
        - The versioning status, empty when versioning was never enabled. On a bucket whose versioning is
          Enabled or Suspended, OSS ignores C(x-oss-forbid-overwrite), which the training lease relies on.
      type: str
      sample: Enabled
    intranet_endpoint: {description: The endpoint inside the region's VPCs., type: str}
    extranet_endpoint: {description: The public endpoint., type: str}
deleted_objects:
  description: How many objects O(force) deleted.
  returned: when state is absent
  type: int
"""

from typing import Any  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_policy import (  # noqa: E402
    PolicyError,
    check_bucket_name,
)

try:
    import alibabacloud_oss_v2 as oss
except ImportError:  # reported by AlicloudModule
    oss = None

GONE = ("NoSuchBucket",)


def describe_bucket(module: AlicloudModule, name: str) -> dict[str, Any] | None:
    result = module.oss_call("get_bucket_info", oss.GetBucketInfoRequest(bucket=name), missing_ok=GONE)
    if result is None:
        return None
    info = result.bucket_info
    tags = module.oss_call("get_bucket_tags", oss.GetBucketTagsRequest(bucket=name), missing_ok=GONE)
    tag_list = tags.tagging.tag_set.tags if tags and tags.tagging and tags.tagging.tag_set else None
    versioning = module.oss_call("get_bucket_versioning", oss.GetBucketVersioningRequest(bucket=name),
                                 missing_ok=GONE)
    return {"name": info.name, "location": info.location, "acl": info.acl, "storage_class": info.storage_class,
            "intranet_endpoint": info.intranet_endpoint, "extranet_endpoint": info.extranet_endpoint,
            "creation_date": str(info.creation_date) if info.creation_date else None,
            "tags": {t.key: t.value or "" for t in tag_list or []},
            "versioning": (versioning.version_status if versioning else None) or ""}


def wanted_tags(current: dict[str, str], params: dict[str, Any]) -> dict[str, str]:
    if params.get("tags") is None:
        return current
    tags = {str(k): str(v) for k, v in params["tags"].items()}
    return tags if params["purge_tags"] else {**current, **tags}


def check_unchangeable(module: AlicloudModule, bucket: dict[str, Any]) -> None:
    p = module.params
    if bucket["storage_class"] and bucket["storage_class"] != p["storage_class"]:
        module.fail_json(msg=f"The bucket {p['name']} has storage class {bucket['storage_class']}, not "
                             f"{p['storage_class']}: OSS cannot change a bucket's storage class; set "
                             "storage_class to match, or copy the data to a new bucket.")
    location = f"oss-{module.region}"
    if bucket["location"] and bucket["location"] != location:
        module.fail_json(msg=f"The bucket {p['name']} is in {bucket['location']}, not {location}: a bucket cannot "
                             "move between regions.")


def update_acl(module: AlicloudModule, bucket: dict[str, Any]) -> bool:
    if bucket["acl"] == module.params["acl"]:
        return False
    if not module.check_mode:
        module.oss_call("put_bucket_acl", oss.PutBucketAclRequest(bucket=bucket["name"], acl=module.params["acl"]))
    return True


def update_tags(module: AlicloudModule, bucket: dict[str, Any]) -> bool:
    tags = wanted_tags(bucket["tags"], module.params)
    if tags == bucket["tags"]:
        return False
    if not module.check_mode:
        if tags:
            tagging = oss.Tagging(tag_set=oss.TagSet(tags=[oss.Tag(key=k, value=v) for k, v in sorted(tags.items())]))
            module.oss_call("put_bucket_tags", oss.PutBucketTagsRequest(bucket=bucket["name"], tagging=tagging))
        else:
            module.oss_call("delete_bucket_tags", oss.DeleteBucketTagsRequest(bucket=bucket["name"]))
    return True


def empty_bucket(module: AlicloudModule, name: str) -> int:
    deleted = 0
    token = None
    while True:
        page = module.oss_call("list_objects_v2", oss.ListObjectsV2Request(bucket=name, continuation_token=token,
                                                                            max_keys=1000), missing_ok=GONE)
        if page is None:
            return deleted
        for item in page.contents or []:
            module.oss_call("delete_object", oss.DeleteObjectRequest(bucket=name, key=item.key))
            deleted += 1
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    uploads = module.oss_call("list_multipart_uploads", oss.ListMultipartUploadsRequest(bucket=name),
                              missing_ok=GONE)
    for upload in (uploads.uploads if uploads else None) or []:
        module.oss_call("abort_multipart_upload", oss.AbortMultipartUploadRequest(
            bucket=name, key=upload.key, upload_id=upload.upload_id), missing_ok=(*GONE, "NoSuchUpload"))
    return deleted


def ensure_absent(module: AlicloudModule, bucket: dict[str, Any] | None) -> None:
    name = module.params["name"]
    if bucket is None:
        module.exit_resource(False, "bucket", None, None, deleted_objects=0)
    if module.check_mode:
        module.exit_resource(True, "bucket", bucket, None, deleted_objects=0)
    deleted = empty_bucket(module, name) if module.params["force"] else 0
    result = module.oss_call("delete_bucket", oss.DeleteBucketRequest(bucket=name),
                             missing_ok=(*GONE, "BucketNotEmpty"))
    if result is None and describe_bucket(module, name) is not None:
        module.fail_json(msg=f"The bucket {name} is not empty: delete its objects first, or set force=true to "
                             "delete them with the bucket.")
    module.exit_resource(True, "bucket", bucket, None, deleted_objects=deleted)


def ensure_present(module: AlicloudModule, bucket: dict[str, Any] | None) -> None:
    p = module.params
    if bucket is None:
        if not module.check_mode:
            module.oss_call("put_bucket", oss.PutBucketRequest(
                bucket=p["name"], acl=p["acl"],
                create_bucket_configuration=oss.CreateBucketConfiguration(storage_class=p["storage_class"])))
            created = describe_bucket(module, p["name"]) or {"name": p["name"], "tags": {}}
            update_tags(module, created)
        after = describe_bucket(module, p["name"]) if not module.check_mode else {
            "name": p["name"], "acl": p["acl"], "storage_class": p["storage_class"], "tags": p.get("tags") or {}}
        module.exit_resource(True, "bucket", None, after)
    check_unchangeable(module, bucket)
    changed = update_acl(module, bucket)
    changed |= update_tags(module, bucket)
    after = bucket
    if changed:
        after = describe_bucket(module, p["name"]) if not module.check_mode else {
            **bucket, "acl": p["acl"], "tags": wanted_tags(bucket["tags"], p)}
    module.exit_resource(changed, "bucket", bucket, after)


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        name=dict(type="str", required=True, aliases=["bucket"]),
        acl=dict(type="str", default="private", choices=["private", "public-read", "public-read-write"]),
        storage_class=dict(type="str", default="Standard",
                           choices=["Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"]),
        tags=dict(type="dict"),
        purge_tags=dict(type="bool", default=True),
        force=dict(type="bool", default=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    ))
    try:
        check_bucket_name(module.params["name"])
    except PolicyError as err:
        if module.params["state"] == "absent":  # no bucket can have that name: nothing to remove
            module.exit_json(changed=False, bucket={}, msg=f"{err} No bucket can have it: nothing to remove.")
        module.fail_json(msg=str(err))
    module.check_region()
    before = describe_bucket(module, module.params["name"])
    if module.params["state"] == "absent":
        ensure_absent(module, before)
    ensure_present(module, before)


if __name__ == "__main__":
    main()
