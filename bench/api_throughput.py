"""Describe-call throughput of localcloud's RPC API with one official SDK client.

Starts a localcloud of its own (temporary state), creates a few resources so that the
Describe calls have something to return, then runs each call back to back for a fixed time
and prints requests per second and the median latency. Target: at least 200 requests/s.

    .venv/bin/python bench/api_throughput.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_ess20220222 import models as ess_models
from alibabacloud_ess20220222.client import Client as EssClient
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient

from localcloud import cli


def measure(name: str, call, seconds: float) -> tuple[str, float, float]:
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return name, len(latencies) / sum(latencies), statistics.median(latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="localcloud-bench-") as tmp:
        state_dir = Path(tmp)
        rt = cli.up(state_dir, None, None, None, None, None)
        try:
            env = {}
            for line in (state_dir / cli.ENV_FILE).read_text().splitlines():
                if line.startswith("export "):
                    key, _, value = line.removeprefix("export ").partition("=")
                    env[key] = value
            config = Config(access_key_id=env["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                            access_key_secret=env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
                            endpoint=env["LOCALCLOUD_ENDPOINT"], protocol="http", region_id="cn-hangzhou")
            ecs, vpc, ess = EcsClient(config), VpcClient(config), EssClient(config)
            for i in range(5):
                vpc.create_vpc(vpc_models.CreateVpcRequest(region_id="cn-hangzhou", vpc_name=f"bench-{i}"))
            calls = [
                ("ecs:DescribeRegions", lambda: ecs.describe_regions(ecs_models.DescribeRegionsRequest())),
                ("ecs:DescribeInstances", lambda: ecs.describe_instances(
                    ecs_models.DescribeInstancesRequest(region_id="cn-hangzhou"))),
                ("vpc:DescribeVpcs", lambda: vpc.describe_vpcs(
                    vpc_models.DescribeVpcsRequest(region_id="cn-hangzhou"))),
                ("ess:DescribeScalingGroups", lambda: ess.describe_scaling_groups(
                    ess_models.DescribeScalingGroupsRequest(region_id="cn-hangzhou"))),
            ]
            print(f"localcloud pid {rt['pid']}, one client, {args.seconds:g}s per call, signature V3")
            print(f"{'call':<28}{'requests/s':>12}{'median ms':>12}")
            rates = []
            for name, call in calls:
                name, rate, median_ms = measure(name, call, args.seconds)
                rates.append(rate)
                print(f"{name:<28}{rate:>12.0f}{median_ms:>12.2f}")
            print(f"{'median over calls':<28}{statistics.median(rates):>12.0f}   (target: >= 200 requests/s)")
        finally:
            cli.down(state_dir)


if __name__ == "__main__":
    main()
