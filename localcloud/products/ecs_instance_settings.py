"""ECS: changing instances in place — attributes, the instance RAM role, and tags on instances,
security groups and images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import images, instances, network
from ..errors import ApiError, invalid, missing
from ..params import Params
from ..registry import Request, action
from ..store import Kind
from .ecs_common import Record, id_list, incorrect_status, merge_tags, page_numbered, page_tokened, tags_param
from .ecs_instances import (
    check_ecs_role,
    check_names,
    check_password,
    check_security_groups,
    check_user_data,
    hash_password,
)

if TYPE_CHECKING:
    from ..cloud import Cloud

# TagResources' ResourceType -> the kind of record it names.
TAGGABLE = {"instance": instances.INSTANCE, "securitygroup": network.SECURITY_GROUP, "image": images.IMAGE}


@action("ecs", "ModifyInstanceAttribute")
def modify_instance_attribute(cloud: Cloud, req: Request) -> dict:
    p = req.params
    instance = instances.get(cloud, p.str("InstanceId", required=True) or "")
    check_names(p)
    changes: dict[str, Any] = {k: p.str(k) for k in ("InstanceName", "HostName", "Description")
                               if p.str(k) is not None}
    password = p.str("Password")
    if password:
        check_password(password)
        changes["PasswordHash"] = hash_password(password)
    if p.str("UserData") is not None:
        if instance["Status"] != "Stopped":
            raise incorrect_status(instance["InstanceId"], instance["Status"], "changing UserData (stop it first)")
        changes["UserData"] = check_user_data(p.str("UserData"))
    groups = p.list("SecurityGroupIds")
    if groups:
        changes["SecurityGroupIds"] = check_security_groups(cloud, groups, instance["VpcId"])
    if changes:
        instances.INSTANCE.update(cloud.store, instance["InstanceId"], **changes)
    return {}


def _role_result(instance_id: str, code: str = "200", message: str = "success") -> dict[str, Any]:
    return {"InstanceId": instance_id, "Success": code == "200", "Code": code, "Message": message}


def _ram_instance_ids(p: Params) -> list[str]:
    ids = id_list(p, "InstanceIds", 100)
    if not ids:
        raise missing("InstanceIds")
    return ids


@action("ecs", "AttachInstanceRamRole")
def attach_instance_ram_role(cloud: Cloud, req: Request) -> dict:
    p = req.params
    role = check_ecs_role(cloud, p.str("RamRoleName", required=True) or "")["RoleName"]
    results = []
    for instance_id in _ram_instance_ids(p):
        instance = instances.INSTANCE.find(cloud.store, instance_id)
        if instance is None:
            results.append(_role_result(instance_id, "InvalidInstanceId.NotFound",
                                        f"The specified instance {instance_id} does not exist."))
        elif instance.get("RamRoleName") not in ("", role):
            results.append(_role_result(instance_id, "InvalidRamRole.AlreadyAttached",
                                        f"{instance_id} already has the role {instance['RamRoleName']}; detach it "
                                        "first."))
        else:
            instances.INSTANCE.update(cloud.store, instance_id, RamRoleName=role)
            results.append(_role_result(instance_id))
    return {"RamRoleName": role, "TotalCount": len(results), "FailCount": sum(not r["Success"] for r in results),
            "AttachInstanceRamRoleResults": {"AttachInstanceRamRoleResult": results}}


@action("ecs", "DetachInstanceRamRole")
def detach_instance_ram_role(cloud: Cloud, req: Request) -> dict:
    p = req.params
    named = p.str("RamRoleName")
    results = []
    for instance_id in _ram_instance_ids(p):
        instance = instances.INSTANCE.find(cloud.store, instance_id)
        if instance is None:
            result = _role_result(instance_id, "InvalidInstanceId.NotFound",
                                  f"The specified instance {instance_id} does not exist.")
        elif named and instance.get("RamRoleName", "").lower() != named.lower():
            result = _role_result(instance_id, "InvalidRamRole.NotEqual",
                                  f"{instance_id} does not have the role {named}.")
        else:
            result = _role_result(instance_id)
            result["InstanceRamRoleSets"] = {"InstanceRamRoleSet": [
                {"InstanceId": instance_id, "RamRoleName": instance.get("RamRoleName", "")}]}
            instances.INSTANCE.update(cloud.store, instance_id, RamRoleName="")
        results.append(result)
    return {"RamRoleName": named or "", "TotalCount": len(results),
            "FailCount": sum(not r["Success"] for r in results),
            "DetachInstanceRamRoleResults": {"DetachInstanceRamRoleResult": results}}


@action("ecs", "DescribeInstanceRamRole")
def describe_instance_ram_role(cloud: Cloud, req: Request) -> dict:
    p = req.params
    ids = id_list(p, "InstanceIds", 100)
    role = (p.str("RamRoleName") or "").lower()
    found = [i for i in instances.INSTANCE.all(cloud.store)
             if i.get("RamRoleName") and (not ids or i["InstanceId"] in ids)
             and (not role or i["RamRoleName"].lower() == role)]
    chunk, paging = page_numbered(p, found, default_size=10, max_size=100)
    return {"RegionId": cloud.settings.region, "TotalCount": paging["TotalCount"], "InstanceRamRoleSets": {
        "InstanceRamRoleSet": [{"InstanceId": i["InstanceId"], "RamRoleName": i["RamRoleName"]} for i in chunk]}}


def _taggable(p: Params) -> tuple[str, Kind]:
    given = p.str("ResourceType", required=True) or ""
    resource_type = given.lower()
    if resource_type not in TAGGABLE:
        raise invalid("ResourceType", f"Valid values here: {', '.join(TAGGABLE)}.")
    return resource_type, TAGGABLE[resource_type]


def _tagged_resources(cloud: Cloud, kind: Kind, resource_ids: list[str]) -> list[Record]:
    found = []
    for resource_id in resource_ids:
        record = kind.find(cloud.store, resource_id)
        if record is None:
            raise ApiError("InvalidResourceId.NotFound", f"The specified resource {resource_id} does not exist.",
                           404)
        found.append(record)
    return found


@action("ecs", "TagResources")
def tag_resources(cloud: Cloud, req: Request) -> dict:
    p = req.params
    _, kind = _taggable(p)
    tags = tags_param(p)
    if not tags:
        raise missing("Tag.N.Key")
    for record in _tagged_resources(cloud, kind, p.list("ResourceId")):
        kind.update(cloud.store, record[kind.id_field], Tags=merge_tags(record.get("Tags", []), tags))
    return {}


@action("ecs", "UntagResources")
def untag_resources(cloud: Cloud, req: Request) -> dict:
    p = req.params
    _, kind = _taggable(p)
    keys = set(p.list("TagKey"))
    remove_all = bool(p.bool("All", False))
    for record in _tagged_resources(cloud, kind, p.list("ResourceId")):
        kept = [] if remove_all else [t for t in record.get("Tags", []) if t["Key"] not in keys]
        kind.update(cloud.store, record[kind.id_field], Tags=kept)
    return {}


@action("ecs", "ListTagResources")
def list_tag_resources(cloud: Cloud, req: Request) -> dict:
    p = req.params
    resource_type, kind = _taggable(p)
    id_field = kind.id_field
    wanted_ids = set(p.list("ResourceId"))
    wanted_tags = {t["Key"]: t["Value"] for t in p.tags("Tag")}
    rows = []
    for record in kind.all(cloud.store):
        if wanted_ids and record[id_field] not in wanted_ids:
            continue
        for tag in record.get("Tags", []):
            if wanted_tags and wanted_tags.get(tag["Key"]) not in ("", tag["Value"]):
                continue
            rows.append({"ResourceId": record[id_field], "ResourceType": resource_type, "TagKey": tag["Key"],
                         "TagValue": tag["Value"]})
    chunk, paging = page_tokened(p, rows, default_size=50, max_size=1000)
    return {"NextToken": paging["NextToken"], "TagResources": {"TagResource": chunk}}
