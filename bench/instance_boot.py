"""Container instances: time from RunInstances to a Running instance, and the CreateImage time.

Starts a localcloud of its own with the container backend (temporary state; needs root and
podman), launches instances one after the other and prints the median time from the RunInstances
call until DescribeInstances says Running (systemd in the container reports the system running),
then the time from CreateImage until the image is Available. Aim: under 5 s to Running.

    sudo .venv/bin/python bench/instance_boot.py [--instances 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

from localcloud import cli
from localcloud.backends.containers import podman_usable
from localcloud.images import SYSTEM_IMAGES

REGION = "cn-hangzhou"
TIMEOUT = 300.0


def wait(predicate, what: str) -> None:
    deadline = time.perf_counter() + TIMEOUT
    while not predicate():
        if time.perf_counter() > deadline:
            raise SystemExit(f"instance_boot: {what} did not happen within {TIMEOUT:.0f}s")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=5, help="instances to boot, one after the other")
    args = parser.parse_args()
    problem = podman_usable()
    if problem:
        sys.exit(f"instance_boot: {problem}")
    cli.ensure_base_image()
    with tempfile.TemporaryDirectory(prefix="localcloud-bench-") as tmp:
        state_dir = Path(tmp)
        cli.up(state_dir, None, None, None, None, 0.1, "containers")
        try:
            env = dict(line.removeprefix("export ").split("=", 1)
                       for line in (state_dir / cli.ENV_FILE).read_text().splitlines() if line.startswith("export "))
            config = Config(access_key_id=env["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                            access_key_secret=env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
                            endpoint=env["LOCALCLOUD_ENDPOINT"], protocol="http", region_id=REGION)
            ecs, vpc = EcsClient(config), VpcClient(config)
            vpc_id = vpc.create_vpc(vpc_models.CreateVpcRequest(region_id=REGION, cidr_block="172.16.0.0/12")
                                    ).body.vpc_id
            vswitch_id = vpc.create_vswitch(vpc_models.CreateVSwitchRequest(
                region_id=REGION, vpc_id=vpc_id, zone_id=f"{REGION}-h", cidr_block="172.31.250.0/24")
            ).body.v_switch_id
            group_id = ecs.create_security_group(ecs_models.CreateSecurityGroupRequest(
                region_id=REGION, vpc_id=vpc_id)).body.security_group_id

            def status(instance_id: str) -> str | None:
                found = ecs.describe_instances(ecs_models.DescribeInstancesRequest(
                    region_id=REGION, instance_ids=json.dumps([instance_id]))).body.instances.instance
                return found[0].status if found else None

            boots, launched = [], []
            for _ in range(args.instances):
                started = time.perf_counter()
                instance_id = ecs.run_instances(ecs_models.RunInstancesRequest(
                    region_id=REGION, image_id=SYSTEM_IMAGES[0]["ImageId"], instance_type="ecs.g7.large",
                    v_switch_id=vswitch_id, security_group_id=group_id)).body.instance_id_sets.instance_id_set[0]
                wait(lambda i=instance_id: status(i) == "Running", f"{instance_id} Running")
                boots.append(time.perf_counter() - started)
                launched.append(instance_id)
            started = time.perf_counter()
            image_id = ecs.create_image(ecs_models.CreateImageRequest(
                region_id=REGION, instance_id=launched[0])).body.image_id

            def available() -> bool:
                found = ecs.describe_images(ecs_models.DescribeImagesRequest(
                    region_id=REGION, image_id=image_id, status="Available")).body.images.image
                return bool(found)

            wait(available, f"{image_id} Available")
            capture = time.perf_counter() - started
            print(f"{'RunInstances -> Running (systemd up)':<40}median {statistics.median(boots):6.2f} s  "
                  f"min {min(boots):6.2f} s  max {max(boots):6.2f} s  ({len(boots)} instances)")
            print(f"{'CreateImage -> Available':<40}{capture:13.2f} s")
            print("(real seconds; aim: under 5 s to Running)")
        finally:
            cli.down(state_dir, purge=True)


if __name__ == "__main__":
    main()
