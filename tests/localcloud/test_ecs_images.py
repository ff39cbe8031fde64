"""ECS images through the official SDK: the system image, CreateImage, DescribeImages, DeleteImage."""

from __future__ import annotations

from typing import Any

import pytest
from alibabacloud_ecs20140526 import models as m

from .ecs_support import SYSTEM_IMAGE, Network, api_error, make_network, run, unique, wait_for, wait_status


@pytest.fixture(scope="module")
def ecs(localcloud: Any) -> Any:
    return localcloud.client("ecs")


@pytest.fixture(scope="module")
def net(localcloud: Any) -> Network:
    return make_network(localcloud, cidr="172.16.30.0/24")


def images(ecs: Any, cloud: Any, **filters: Any) -> list[Any]:
    request = m.DescribeImagesRequest(region_id=cloud.region, page_size=100, **filters)
    return ecs.describe_images(request).body.images.image


def image(ecs: Any, cloud: Any, image_id: str) -> Any | None:
    found = images(ecs, cloud, image_id=image_id, status="Creating,Available,CreateFailed")
    return found[0] if found else None


@pytest.fixture(scope="module")
def running_instance(localcloud: Any, net: Network) -> str:
    (instance_id,) = run(localcloud, net)
    wait_status(localcloud, instance_id, "Running")
    return instance_id


def test_a_debian_system_image_is_there_from_the_start(ecs: Any, localcloud: Any) -> None:
    (debian,) = [i for i in images(ecs, localcloud, image_owner_alias="system") if i.image_id == SYSTEM_IMAGE]
    assert (debian.osname, debian.platform, debian.architecture, debian.status, debian.image_owner_alias) == (
        "Debian 12 64 bit", "Debian", "x86_64", "Available", "system")
    assert debian.progress == "100%"


def test_create_image_from_a_running_instance(ecs: Any, localcloud: Any, running_instance: str) -> None:
    name = unique("baked")
    image_id = ecs.create_image(m.CreateImageRequest(region_id=localcloud.region, instance_id=running_instance,
                                                     image_name=name, description="trained env")).body.image_id
    assert image_id.startswith("m-")
    assert image(ecs, localcloud, image_id).status in ("Creating", "Available")
    done = wait_for(lambda: (i := image(ecs, localcloud, image_id)) and i.status == "Available" and i)
    assert (done.image_name, done.description, done.progress, done.image_owner_alias) == (
        name, "trained env", "100%", "self")
    assert done.osname == "Debian 12 64 bit"
    assert [i.image_id for i in images(ecs, localcloud, image_owner_alias="self", image_name=name)] == [image_id]
    assert image_id not in {i.image_id for i in images(ecs, localcloud, image_owner_alias="system")}


def test_an_image_name_is_used_once(ecs: Any, localcloud: Any, running_instance: str) -> None:
    name = unique("dup")
    request = m.CreateImageRequest(region_id=localcloud.region, instance_id=running_instance, image_name=name)
    ecs.create_image(request)
    assert api_error(ecs.create_image, request).code == "InvalidImageName.Duplicated"


def test_an_image_needs_a_running_or_stopped_instance(ecs: Any, localcloud: Any, net: Network) -> None:
    err = api_error(ecs.create_image, m.CreateImageRequest(region_id=localcloud.region, instance_id="i-gone"))
    assert err.code == "InvalidInstanceId.NotFound"


def test_new_instances_launch_from_a_custom_image(ecs: Any, localcloud: Any, net: Network,
                                                  running_instance: str) -> None:
    image_id = ecs.create_image(m.CreateImageRequest(region_id=localcloud.region, instance_id=running_instance,
                                                     image_name=unique("launch"))).body.image_id
    wait_for(lambda: image(ecs, localcloud, image_id).status == "Available")
    (instance_id,) = run(localcloud, net, image_id=image_id)
    err = api_error(ecs.delete_image, m.DeleteImageRequest(region_id=localcloud.region, image_id=image_id))
    assert (err.code, err.status_code) == ("ImageUsingByInstance", 403)
    ecs.delete_image(m.DeleteImageRequest(region_id=localcloud.region, image_id=image_id, force=True))
    assert image(ecs, localcloud, image_id) is None
    ecs.delete_instance(m.DeleteInstanceRequest(instance_id=instance_id, force=True))


def test_a_system_image_cannot_be_deleted(ecs: Any, localcloud: Any) -> None:
    err = api_error(ecs.delete_image, m.DeleteImageRequest(region_id=localcloud.region, image_id=SYSTEM_IMAGE,
                                                           force=True))
    assert (err.code, err.status_code) == ("OperationDenied", 403)
    assert image(ecs, localcloud, SYSTEM_IMAGE) is not None


def test_deleting_an_unknown_image_says_not_found(ecs: Any, localcloud: Any) -> None:
    err = api_error(ecs.delete_image, m.DeleteImageRequest(region_id=localcloud.region, image_id="m-gone"))
    assert (err.code, err.status_code) == ("InvalidImageId.NotFound", 404)


def test_rename_an_image(ecs: Any, localcloud: Any, running_instance: str) -> None:
    image_id = ecs.create_image(m.CreateImageRequest(region_id=localcloud.region, instance_id=running_instance,
                                                     image_name=unique("old"))).body.image_id
    new_name = unique("new")
    ecs.modify_image_attribute(m.ModifyImageAttributeRequest(region_id=localcloud.region, image_id=image_id,
                                                             image_name=new_name))
    assert image(ecs, localcloud, image_id).image_name == new_name


def test_images_page(ecs: Any, localcloud: Any, running_instance: str) -> None:
    for _ in range(3):
        ecs.create_image(m.CreateImageRequest(region_id=localcloud.region, instance_id=running_instance))
    wait_for(lambda: not images(ecs, localcloud, status="Creating"))
    body = ecs.describe_images(m.DescribeImagesRequest(region_id=localcloud.region, image_owner_alias="self",
                                                       page_size=2, page_number=1)).body
    assert body.total_count >= 3 and len(body.images.image) == 2 and body.page_size == 2


def test_an_image_a_scaling_configuration_uses_cannot_be_deleted(make_localcloud: Any) -> None:
    from localcloud.store import Store

    cloud = make_localcloud()
    ecs = cloud.client("ecs")
    net = make_network(cloud)
    (instance_id,) = run(cloud, net)
    wait_status(cloud, instance_id, "Running")
    image_id = ecs.create_image(m.CreateImageRequest(region_id=cloud.region, instance_id=instance_id,
                                                     image_name=unique("asg"))).body.image_id
    # A bare record stands in for a configuration: only its ImageId matters to DeleteImage.
    store = Store(cloud.state_dir / "state.db")
    store.put("scaling_configuration", "asc-test", {"ScalingConfigurationId": "asc-test", "ImageId": image_id})
    store.close()
    err = api_error(ecs.delete_image, m.DeleteImageRequest(region_id=cloud.region, image_id=image_id, force=True))
    assert (err.code, err.status_code) == ("OperationDenied.ImageUsedByScalingConfiguration", 403)
