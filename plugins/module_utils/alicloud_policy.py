"""RAM policy documents: parsing with clear errors, a canonical form to compare, and the
least-privilege OSS policy training needs (generated from the bucket and its prefixes)."""

from __future__ import annotations

import json
import re
from typing import Any

ECS_TRUST_SERVICE = "ecs.aliyuncs.com"
LIST_KEYS = ("Action", "NotAction", "Resource", "NotResource")
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


class PolicyError(ValueError):
    pass


def parse_policy(document: Any, what: str = "policy document") -> dict[str, Any]:
    """A policy from a JSON string or a dict; PolicyError says what is wrong with it."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as err:
            raise PolicyError(f"The {what} is not valid JSON: {err}.") from None
    if not isinstance(document, dict):
        raise PolicyError(f"The {what} must be a JSON object with Version and Statement.")
    statements = document.get("Statement")
    if str(document.get("Version", "")) != "1":
        raise PolicyError(f"The {what} needs \"Version\": \"1\".")
    if not isinstance(statements, list) or not statements:
        raise PolicyError(f"The {what} needs a non-empty \"Statement\" list.")
    for index, statement in enumerate(statements, 1):
        if not isinstance(statement, dict):
            raise PolicyError(f"Statement {index} of the {what} is not an object.")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f"Statement {index} of the {what} needs \"Effect\": \"Allow\" or \"Deny\".")
        if "Action" not in statement and "NotAction" not in statement:
            raise PolicyError(f"Statement {index} of the {what} needs \"Action\".")
    return document


def canonical(document: dict[str, Any]) -> dict[str, Any]:
    """The same policy in one spelling: lists sorted, single strings as lists, Version a string."""
    statements = []
    for statement in document.get("Statement", []):
        item = dict(statement)
        for key in LIST_KEYS:
            if key in item:
                value = item[key]
                item[key] = sorted([value] if isinstance(value, str) else value)
        principal = item.get("Principal")
        if isinstance(principal, dict):
            item["Principal"] = {k: sorted([v] if isinstance(v, str) else v) for k, v in principal.items()}
        statements.append(item)
    statements.sort(key=lambda s: json.dumps(s, sort_keys=True))
    return {"Version": str(document.get("Version", "1")), "Statement": statements}


def same_policy(left: Any, right: Any) -> bool:
    return canonical(parse_policy(left)) == canonical(parse_policy(right))


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def trust_policy(services: list[str]) -> dict[str, Any]:
    """A trust policy that lets the given cloud services (ECS by default) assume the role."""
    return {"Version": "1", "Statement": [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": list(services)}}]}


def _prefix(prefix: str) -> str:
    prefix = prefix.strip().lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix


def check_bucket_name(name: str) -> None:
    """OSS bucket naming rules: 3-63 characters, lower-case letters, digits and hyphens."""
    if not BUCKET_NAME.match(name or "") or "--" in name:
        raise PolicyError(f"Invalid bucket name {name!r}: 3-63 characters, lower-case letters, digits and "
                          "hyphens, starting and ending with a letter or digit.")


def training_agent_statements(region: str) -> list[dict[str, Any]]:
    """What the training agent calls besides OSS and its scaling group: whether the instance holding its
    lease still exists, and the CloudMonitor event it reports when training ends.

    DescribeInstances is authorized on `acs:ecs:<region>:<account>:instance/*` (it reads, and only
    in the project's region). PutCustomEvent has no resource-level permission: RAM takes `*` only.
    """
    return [{"Effect": "Allow", "Action": ["ecs:DescribeInstances"], "Resource": [f"acs:ecs:{region}:*:instance/*"]},
            {"Effect": "Allow", "Action": ["cms:PutCustomEvent"], "Resource": ["*"]}]


# What an instance does with its own scaling group: see that the group removes it (Removing:Wait at
# the SCALE_IN hook), read how long the hook holds it and ask for more time where its handover needs it,
# and let the removal go on once it has handed over; set the desired capacity to 0 once training has ended.
SCALING_GROUP_ACTIONS = ("ess:DescribeScalingInstances", "ess:DescribeScalingActivities",
                         "ess:DescribeLifecycleActions", "ess:DescribeLifecycleHooks",
                         "ess:RecordLifecycleActionHeartbeat", "ess:CompleteLifecycleAction", "ess:ModifyScalingGroup")


def scaling_group_policy(region: str, group_id: str) -> dict[str, Any]:
    """The training instances' calls on their scaling group, on that group only."""
    if not re.match(r"^asg-[A-Za-z0-9]+$", group_id or ""):
        raise PolicyError(f"Invalid scaling group id {group_id!r}: an ESS id looks like asg-bp1...")
    return {"Version": "1", "Statement": [{
        "Effect": "Allow", "Action": list(SCALING_GROUP_ACTIONS),
        "Resource": [f"acs:ess:{region}:*:scalinggroup/{group_id}"]}]}


def oss_training_policy(bucket: str, read_prefixes: list[str], write_prefixes: list[str]) -> dict[str, Any]:
    """What a training instance needs on its bucket, and nothing else (the seed grants `oss:*`).

    Read the bucket's metadata and list inside the prefixes (ossfs needs both to mount), read objects
    under the read prefixes (the model, the datasets), and read, write and delete under the write
    prefixes (checkpoints are rewritten and rotated). No bucket administration, ACL or policy changes,
    and no object outside the prefixes can be read.
    """
    check_bucket_name(bucket)
    if not read_prefixes and not write_prefixes:
        raise PolicyError("Give at least one read or write prefix.")
    bucket_arn = f"acs:oss:*:*:{bucket}"
    names = sorted({_prefix(p).rstrip("/") for p in list(read_prefixes) + list(write_prefixes)})
    # What is under each prefix, and the exact names a file system on the bucket (s3fs, ossfs) looks up
    # for it: `name`, `name_$folder$` and ms-swift's `name#40` (dataset#samples); a 403 there instead of
    # a 404 makes them exist as unreadable files. Not `name*`: that would also read `name-other/...`.
    read = sorted({f"{bucket_arn}/{n}{suffix}" for n in names for suffix in ("", "_$folder$", "/*", "#*")})
    write = sorted({f"{bucket_arn}/{_prefix(p)}*" for p in write_prefixes})
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["oss:GetBucketInfo", "oss:GetBucketStat"], "Resource": [bucket_arn]},
        # Listings inside the prefixes (oss:Prefix), and of the bucket from its top (the empty prefix, in
        # the form Alibaba documents for it: "" in the StringLike list of oss:Prefix, as in RAM's example of
        # a directory browsed from the console). s3fs and ossfs check the bucket at mount time with a
        # listing that names no prefix and no delimiter, which RAM cannot tell from a listing of every key;
        # refused, the mount fails. Keys elsewhere can be listed, then, but not read.
        {"Effect": "Allow", "Action": ["oss:ListObjects"], "Resource": [bucket_arn],
         "Condition": {"StringLike": {"oss:Prefix": ["", *sorted(f"{n}{s}" for n in names for s in ("/*", "#*"))]}}},
        {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": read},
    ]
    if write:
        statements.append({"Effect": "Allow",
                           "Action": ["oss:PutObject", "oss:DeleteObject", "oss:AbortMultipartUpload",
                                      "oss:ListParts"],
                           "Resource": write})
    return {"Version": "1", "Statement": statements}
