#!/usr/bin/python
from __future__ import annotations

DOCUMENTATION = r"""
module: alicloud_oss_object
short_description: Upload a directory to OSS, list objects under a prefix, read a small object
description:
  - V(put) uploads O(content) to O(key), or every file under O(src) to O(prefix) in O(bucket),
    skipping files whose object already has the same size and MD5 (the ETag of a simple upload);
    idempotent.
  - V(list) returns the objects under O(prefix) (and the common prefixes with O(delimiter)).
  - V(get) returns the text of the object O(key) (at most O(max_bytes) bytes from its end).
  - The playbooks use it to stage the model and datasets and to watch the checkpoints training
    writes under C(output/).
options:
  bucket:
    description: The bucket.
    type: str
    required: true
  mode:
    description: What to do.
    type: str
    choices: [put, list, get]
    default: list
  src:
    description: The local directory whose files V(put) uploads.
    type: path
  content:
    description: With V(put) and O(key) instead of O(src), the text of one object.
    type: str
  prefix:
    description: The key prefix (V(put) - where the files go; V(list) - what to list).
    type: str
    default: ""
  delimiter:
    description: With V(list), group keys by this delimiter into RV(prefixes).
    type: str
  key:
    description: The object V(get) reads, or V(put) writes with O(content).
    type: str
  max_bytes:
    description: With V(get), read at most this many bytes (the end of the object).
    type: int
    default: 1048576
  missing_ok:
    description: With V(get), a missing object returns RV(exists=false) instead of failing.
    type: bool
    default: true
extends_documentation_fragment: [spotfirst.finetune.alicloud]
author: Spot-first fine-tuning project
"""

EXAMPLES = r"""
- name: Upload the staged model and datasets
  alicloud_oss_object:
    bucket: ess-lora-deepseek7b-data
    mode: put
    src: .cache/staging

- name: List the checkpoints
  alicloud_oss_object:
    bucket: ess-lora-deepseek7b-data
    prefix: output/
    delimiter: /

- name: Read the training log of ms-swift
  alicloud_oss_object:
    bucket: ess-lora-deepseek7b-data
    mode: get
    key: output/logging.jsonl
"""

RETURN = r"""
uploaded:
  description: With V(put), the keys uploaded (the others were already there).
  returned: mode is put
  type: list
  elements: str
objects:
  description: With V(list), the objects (key, size, etag, last_modified).
  returned: mode is list
  type: list
  elements: dict
prefixes:
  description: With V(list) and O(delimiter), the common prefixes.
  returned: mode is list
  type: list
  elements: str
content:
  description: With V(get), the object's text (its last O(max_bytes) bytes).
  returned: mode is get
  type: str
exists:
  description: With V(get), whether the object exists.
  returned: mode is get
  type: bool
"""

import hashlib  # noqa: E402
import os  # noqa: E402

from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import AlicloudModule  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud_oss import (  # noqa: E402
    list_objects,
    read_tail,
)

MULTIPART_ABOVE = 64 * 1024 * 1024


def md5_hex(path: str) -> str:
    # The ETag of a simple upload is the MD5 of the object.
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def local_files(src: str) -> list[tuple[str, str]]:
    """(relative key, path) of every file under src, sorted."""
    found = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            found.append((os.path.relpath(path, src).replace(os.sep, "/"), path))
    return found




def put_content(module: AlicloudModule, bucket: str, key: str, content: str) -> None:
    import alibabacloud_oss_v2 as oss
    data = content.encode("utf-8")
    there = list_objects(module, bucket, key, None)[0]
    same = any(o["key"] == key and o["size"] == len(data) and o["etag"] == hashlib.md5(data).hexdigest()
               for o in there)
    if not same and not module.check_mode:
        module.oss_call("put_object", oss.PutObjectRequest(bucket=bucket, key=key, body=data))
    module.exit_json(changed=not same, uploaded=[] if same else [key])


def put(module: AlicloudModule, bucket: str) -> None:
    import alibabacloud_oss_v2 as oss
    src, prefix = module.params["src"], module.params["prefix"]
    if module.params["content"] is not None:
        if not module.params["key"]:
            module.fail_json(msg="mode=put with content needs key.")
        put_content(module, bucket, module.params["key"], module.params["content"])
    if not src or not os.path.isdir(src):
        module.fail_json(msg=f"src must be a local directory to upload; {src!r} is not one.")
    existing = {o["key"]: o for o in list_objects(module, bucket, prefix, None)[0]}
    uploaded = []
    for relative, path in local_files(src):
        key = prefix + relative
        there, size = existing.get(key), os.path.getsize(path)
        # A multipart upload's ETag is not the MD5: large objects are compared by size.
        if there and there["size"] == size and (size > MULTIPART_ABOVE or there["etag"] == md5_hex(path)):
            continue
        uploaded.append(key)
        if module.check_mode:
            continue
        if size > MULTIPART_ABOVE:
            try:
                module.oss().uploader().upload_file(oss.PutObjectRequest(bucket=bucket, key=key), filepath=path)
            except Exception as err:
                module.fail_json(msg=f"Uploading {path} to oss://{bucket}/{key} failed: {err}")
        else:
            with open(path, "rb") as handle:
                module.oss_call("put_object", oss.PutObjectRequest(bucket=bucket, key=key, body=handle.read()))
    module.exit_json(changed=bool(uploaded), uploaded=uploaded)


def get(module: AlicloudModule, bucket: str) -> None:
    key = module.params["key"]
    if not key:
        module.fail_json(msg="mode=get needs key.")
    read = read_tail(module, bucket, key, module.params["max_bytes"], module.params["missing_ok"])
    if read is None:
        module.exit_json(changed=False, exists=False, content="")
    module.exit_json(changed=False, exists=True, **read)


def main() -> None:
    module = AlicloudModule(argument_spec=dict(
        bucket=dict(type="str", required=True),
        mode=dict(type="str", default="list", choices=["put", "list", "get"]),
        src=dict(type="path"),
        content=dict(type="str"),
        prefix=dict(type="str", default=""),
        delimiter=dict(type="str"),
        key=dict(type="str", no_log=False),
        max_bytes=dict(type="int", default=1048576),
        missing_ok=dict(type="bool", default=True),
    ))
    bucket, mode = module.params["bucket"], module.params["mode"]
    module.require_region()
    if mode == "put":
        put(module, bucket)
    elif mode == "get":
        get(module, bucket)
    objects, prefixes = list_objects(module, bucket, module.params["prefix"], module.params["delimiter"])
    module.exit_json(changed=False, objects=objects, prefixes=prefixes)


if __name__ == "__main__":
    main()
