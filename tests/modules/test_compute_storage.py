"""alicloud_ecs_instance, alicloud_image and alicloud_oss_bucket against localcloud."""

from __future__ import annotations

import alibabacloud_oss_v2 as oss

from .conftest import task

IMAGE = "debian_12_x64_20G_alibase_localcloud.vhd"
BUCKET = "it-storage-bucket"


def instance(step: str, **options):
    keywords = {k: options.pop(k) for k in ("check_mode", "ignore_errors") if k in options}
    args = {"name": "it-template", "image_id": IMAGE, "instance_type": "ecs.gn7i-c8g1.2xlarge",
            "vswitch_id": "{{ vsw.vswitch.v_switch_id }}",
            "security_group_id": "{{ sg.security_group.security_group_id }}",
            "tags": {"role": "template"}, **options}
    return task(f"instance {step}", "alicloud_ecs_instance", args, **keywords)


def network(name: str, cidr: str) -> list[dict]:
    """The VPC, vSwitch and security group an instance task refers to (registered as vpc, vsw, sg)."""
    return [
        task("vpc", "alicloud_vpc", {"name": f"it-{name}-vpc"}, register="vpc"),
        task("vswitch", "alicloud_vswitch", {"vpc_id": "{{ vpc.vpc.vpc_id }}", "zone": "cn-hangzhou-j",
                                             "cidr_block": cidr}, register="vsw"),
        task("sg", "alicloud_security_group", {"name": f"it-{name}-sg", "vpc_id": "{{ vpc.vpc.vpc_id }}"},
             register="sg"),
    ]


def test_template_instance_and_image_lifecycle(playbook):
    run = playbook([
        *network("compute", "172.16.1.0/24"),
        instance("unknown type", instance_type="ecs.nope", ignore_errors=True),
        instance("create"),
        instance("again"),
        instance("stop in check mode", state="stopped", check_mode=True),
        instance("stop and retag", state="stopped", tags={"role": "bake"}),
        task("find instance", "alicloud_ecs_instance", {"name": "it-template", "state": "present"}, register="tmpl"),
        task("image create", "alicloud_image", {"name": "it-image", "instance_id": "{{ tmpl.instance.instance_id }}"}),
        task("image again", "alicloud_image", {"name": "it-image"}),
        task("image description", "alicloud_image", {"name": "it-image", "description": "baked"}),
        task("image delete", "alicloud_image", {"name": "it-image", "state": "absent"}),
        task("image delete again", "alicloud_image", {"name": "it-image", "state": "absent"}),
        instance("delete", state="absent"),
        instance("delete again", state="absent"),
    ])
    assert run.returncode == 0, run.output[-3000:]
    assert "Unknown instance type(s) ecs.nope" in run["instance unknown type"]["msg"]
    assert run["instance create"]["changed"] and run["instance create"]["instance"]["status"] == "Running"
    assert not run["instance again"]["changed"]
    assert run["instance stop in check mode"]["changed"]
    stopped = run["instance stop and retag"]
    assert stopped["changed"] and stopped["instance"]["status"] == "Stopped"
    assert stopped["instance"]["tags"] == {"role": "bake"}
    assert run["image create"]["changed"] and run["image create"]["image"]["status"] == "Available"
    assert not run["image again"]["changed"] and run["image description"]["changed"]
    assert run["image delete"]["changed"] and not run["image delete again"]["changed"]
    assert run["instance delete"]["changed"] and not run["instance delete again"]["changed"]


def test_release_by_id_and_a_released_instance_is_no_change(playbook):
    release = {"instance_id": "{{ made.instance.instance_id }}", "state": "absent"}
    run = playbook([
        *network("release", "172.16.3.0/24"),
        {**instance("create", name="it-release"), "register": "made"},
        task("release in check mode", "alicloud_ecs_instance", release, check_mode=True),
        task("release", "alicloud_ecs_instance", release),
        task("release again", "alicloud_ecs_instance", release),
        task("find released", "alicloud_ecs_instance", {"name": "it-release", "state": "absent"}),
        task("release needs absent", "alicloud_ecs_instance", {**release, "state": "running"}, ignore_errors=True),
    ])
    assert run.returncode == 0, run.output[-3000:]
    made = run["instance create"]["instance"]["instance_id"]
    assert run["release in check mode"]["changed"]
    assert run["release"]["changed"] and run["release"]["instance"]["instance_id"] == made
    assert not run["release again"]["changed"] and run["release again"]["instance"] == {}
    assert not run["find released"]["changed"]
    assert "give state=absent" in run["release needs absent"]["msg"]


def bucket(step: str, **options):
    keywords = {k: options.pop(k) for k in ("check_mode", "ignore_errors") if k in options}
    return task(f"bucket {step}", "alicloud_oss_bucket", {"name": BUCKET, "tags": {"project": "it"}, **options},
                **keywords)


def test_bucket_lifecycle_and_deleting_only_when_empty(playbook, localcloud):
    run = playbook([
        task("invalid name", "alicloud_oss_bucket", {"name": "Bad_Bucket"}, ignore_errors=True),
        bucket("create"),
        bucket("again"),
        bucket("update in check mode", tags={"project": "other"}, check_mode=True),
        bucket("update", tags={"project": "other"}, acl="public-read"),
        bucket("storage class", storage_class="IA", ignore_errors=True),
    ])
    assert run.returncode == 0, run.output[-3000:]
    assert "Invalid bucket name 'Bad_Bucket'" in run["invalid name"]["msg"]
    assert run["bucket create"]["changed"] and run["bucket create"]["bucket"]["acl"] == "private"
    assert not run["bucket again"]["changed"] and run["bucket update in check mode"]["changed"]
    assert run["bucket update"]["bucket"]["tags"] == {"project": "other"}
    assert run["bucket update"]["bucket"]["acl"] == "public-read"
    assert "cannot change a bucket's storage class" in run["bucket storage class"]["msg"]

    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(localcloud.access_key_id,
                                                                        localcloud.access_key_secret)
    cfg.region, cfg.endpoint, cfg.use_path_style = localcloud.region, localcloud.oss_endpoint, True
    oss.Client(cfg).put_object(oss.PutObjectRequest(bucket=BUCKET, key="output/checkpoint-10/x", body=b"x"))

    done = playbook([
        bucket("delete non-empty", state="absent", ignore_errors=True),
        bucket("delete forced", state="absent", force=True),
        bucket("delete again", state="absent"),
    ])
    assert "is not empty" in done["bucket delete non-empty"]["msg"]
    assert done["bucket delete forced"]["changed"] and done["bucket delete forced"]["deleted_objects"] == 1
    assert not done["bucket delete again"]["changed"]
