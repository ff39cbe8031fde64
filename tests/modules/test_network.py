"""alicloud_vpc, alicloud_vswitch, alicloud_security_group against localcloud."""

from __future__ import annotations

from .conftest import task

VPC = "it-net-vpc"
SSH = {"ip_protocol": "tcp", "port_range": "22/22", "source_cidr_ip": "0.0.0.0/0"}
ICMP = {"ip_protocol": "icmp", "source_cidr_ip": "0.0.0.0/0"}


def network(step: str, description: str = "", vswitch_name: str = "it-a", rules=(SSH, ICMP), **keywords):
    vpc_args = {"name": VPC, "cidr_block": "172.16.0.0/12"}
    if description:
        vpc_args["description"] = description
    return [
        task(f"vpc {step}", "alicloud_vpc", vpc_args, register="vpc", **keywords),
        task(f"vswitch {step}", "alicloud_vswitch", {
            "vpc_id": "{{ vpc.vpc.vpc_id | default('vpc-new') }}", "zone": "cn-hangzhou-j",
            "cidr_block": "172.16.1.0/24", "name": vswitch_name}, **keywords),
        task(f"sg {step}", "alicloud_security_group", {
            "name": "it-net-sg", "vpc_id": "{{ vpc.vpc.vpc_id | default('vpc-new') }}", "rules": list(rules)},
             **keywords),
    ]


def teardown(step: str):
    vpc_id = "{{ vpc.vpc.vpc_id }}"
    return [
        task(f"delete sg {step}", "alicloud_security_group", {"name": "it-net-sg", "vpc_id": vpc_id,
                                                              "state": "absent"}),
        task(f"delete vswitch {step}", "alicloud_vswitch", {"vpc_id": vpc_id, "cidr_block": "172.16.1.0/24",
                                                            "state": "absent"}),
        task(f"delete vpc {step}", "alicloud_vpc", {"name": VPC, "state": "absent"}),
    ]


def test_network_lifecycle(playbook):
    run = playbook([
        *network("create"),
        *network("again"),
        *network("update in check mode", description="training", vswitch_name="it-b", rules=(SSH,),
                 check_mode=True),
        *network("update", description="training", vswitch_name="it-b", rules=(SSH,)),
        task("unknown zone", "alicloud_vswitch", {"vpc_id": "{{ vpc.vpc.vpc_id }}", "zone": "cn-hangzhou-z",
                                                  "cidr_block": "172.16.9.0/24"}, ignore_errors=True),
        task("moved zone", "alicloud_vswitch", {"vpc_id": "{{ vpc.vpc.vpc_id }}", "zone": "cn-hangzhou-k",
                                                "cidr_block": "172.16.1.0/24"}, ignore_errors=True),
        *teardown("first"),
        *teardown("again"),
    ])
    assert run.returncode == 0, run.output[-3000:]
    for kind in ("vpc", "vswitch", "sg"):
        assert run[f"{kind} create"]["changed"] and not run[f"{kind} again"]["changed"]
        assert run[f"{kind} update in check mode"]["changed"] and run[f"{kind} update"]["changed"]
        assert run[f"delete {kind} first"]["changed"] and not run[f"delete {kind} again"]["changed"]
    assert run["vpc update"]["vpc"]["description"] == "training"
    assert run["vswitch update"]["vswitch"]["v_switch_name"] == "it-b"
    rules = run["sg update"]["security_group"]["rules"]
    assert [(r["ip_protocol"].lower(), r["port_range"]) for r in rules] == [("tcp", "22/22")]
    assert "Unknown zone(s) cn-hangzhou-z" in run["unknown zone"]["msg"]
    assert "cannot move between zones" in run["moved zone"]["msg"]
