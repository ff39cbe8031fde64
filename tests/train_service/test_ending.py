"""When training ends: the agent reports it (CloudMonitor, a webhook) and sets its scaling group to 0,
with the instance role's own policy, against localcloud's ECS, ESS and CloudMonitor."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import train_agent.run
from alibabacloud_cms20190101 import models as cms_models
from train_agent import cloud
from train_agent.cloud import CloudError, Keys, RpcClient, StaticCredentials, instance_exists
from train_agent.config import Config
from train_agent.ending import Ending, FailedStarts, conclude
from train_agent.events import EventLog
from train_agent.group import ScaleIn
from train_agent.instance import Instance, no_training_tag
from train_agent.logs import LOG, setup_logging
from train_agent.protocol import COMPLETE_MARKER, EVENTS_DIR

from ..localcloud import ess_support
from ..localcloud.oss_support import role_keys, unique
from .conftest import ROOT, load_file

ZONE = "cn-hangzhou-h"
# The instance policies foundation.yml and scaling_group.yml create, from the same code.
POLICIES = load_file("alicloud_policy", ROOT / "plugins" / "module_utils" / "alicloud_policy.py")


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries a few milliseconds apart, not seconds."""
    monkeypatch.setattr(cloud, "RETRY_BASE", 0.01)


def finished_output(root: Path, step: int = 6, complete: bool = True) -> Path:
    """An output directory whose newest checkpoint is at `step` of 6, with one instance's event log."""
    output = root / "output"
    (output / f"checkpoint-{step}").mkdir(parents=True)
    (output / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step,
                                                                                   "max_steps": 6}))
    (output / EVENTS_DIR).mkdir()
    (output / EVENTS_DIR / "i-earlier.jsonl").write_text(
        json.dumps({"time": time.time() - 100, "event": "start"}) + "\n")
    if complete:
        (output / COMPLETE_MARKER).write_text(json.dumps(
            {"last_model_checkpoint": str(output / f"checkpoint-{step}")}))
    return output


def as_instance(localcloud: Any, instance_id: str, statements: list[dict[str, Any]]) -> Any:
    """The instance as its agent sees itself, with a role of these policy statements."""
    keys = role_keys(localcloud, *statements)
    credentials = StaticCredentials(Keys(keys.access_key_id, keys.access_key_secret, keys.security_token))
    endpoint = f"http://{localcloud.endpoint}"
    return Instance(instance_id, localcloud.region, RpcClient(endpoint, "2014-05-26", credentials),
                    RpcClient(endpoint, "2022-02-22", credentials), credentials)


def setup(localcloud: Any, tmp_path: Path, complete: bool = True,
          with_group_policy: bool = True) -> tuple[Any, Any, str, Any, Any]:
    """A group holding one member at its scale-in hook, the member as the agent sees itself (with the
    project's instance policies: training_agent_statements and scaling_group_policy), and its config."""
    ess, group_id, member = ess_support.member_held_at_scale_in(localcloud, ZONE)
    statements = POLICIES.training_agent_statements(localcloud.region)
    if with_group_policy:
        statements += POLICIES.scaling_group_policy(localcloud.region, group_id)["Statement"]
    instance = as_instance(localcloud, member.instance_id, statements)
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    config = Config(output_dir=finished_output(tmp_path, complete=complete),
                    api_endpoint=f"http://{localcloud.endpoint}", lease_bucket="training-bucket",
                    event_name=unique("training"), log_dir=log_dir, state_dir=tmp_path / "state")
    events = EventLog(tmp_path / "events.jsonl", 0.5)
    return ess, group_id, instance, config, events


def reported(localcloud: Any, name: str) -> list[dict[str, Any]]:
    body = localcloud.client("cms").describe_custom_event_attribute(
        cms_models.DescribeCustomEventAttributeRequest(name=name)).body
    return [json.loads(e.content) for e in (body.custom_events.custom_event if body.custom_events else [])]


def test_on_completion_the_agent_reports_once_and_its_group_releases_it(localcloud, tmp_path) -> None:
    ess, group_id, instance, config, events = setup(localcloud, tmp_path)
    assert conclude(config, instance, events, 0) == 0

    (event,) = reported(localcloud, config.event_name)
    assert event["status"] == "complete"
    assert event["final_checkpoint"] == str(config.output_dir / "checkpoint-6")
    assert (event["global_step"], event["max_steps"], event["instances_used"]) == (6, 6, ["i-earlier"])
    assert event["wall_seconds"] >= 100 and event["instance"] == instance.instance_id
    assert ess_support.group_of(ess, localcloud, group_id).desired_capacity == 0
    # The agent completed its own lifecycle action: the group releases it without waiting for the hook.
    ess_support.wait_for(lambda: not instance_exists(instance.ecs, localcloud.region, instance.instance_id),
                         what="the release")
    assert [e["event"] for e in map(json.loads, events._lines)] == ["notified", "scaled_to_zero", "released_self"]
    # Reported once: a later start (a replacement, a restart) finds the marker and says nothing again.
    assert json.loads((config.output_dir / COMPLETE_MARKER).read_text())["notified_at"]
    assert conclude(config, instance, events, 0) == 0
    assert len(reported(localcloud, config.event_name)) == 1


def test_the_instance_role_cannot_touch_another_group(localcloud, tmp_path) -> None:
    _ess, _group_id, instance, _config, _events = setup(localcloud, tmp_path)
    _other_ess, other_group, _member = ess_support.member_held_at_scale_in(localcloud, ZONE)
    with pytest.raises(CloudError) as denied:
        ScaleIn(instance.ess, localcloud.region, other_group, instance.instance_id).scale_to_zero()
    assert denied.value.code == "Forbidden.RAM"
    with pytest.raises(CloudError) as denied:
        instance.ess.call("DeleteScalingGroup", RegionId=localcloud.region, ScalingGroupId=_group_id)
    assert denied.value.code == "Forbidden.RAM"


def test_failed_starts_are_reported_with_the_error_and_the_group_goes_to_zero_at_the_limit(
        localcloud, tmp_path, quick) -> None:
    ess, group_id, instance, config, events = setup(localcloud, tmp_path, complete=False)
    (config.log_dir / "train_error.log").write_text("Traceback ...\nOSError: /mnt/oss-data/model is not a model\n")
    assert conclude(config, instance, events, 1) == 1
    assert conclude(config, instance, events, 1) == 1  # systemd starts it again
    assert reported(localcloud, config.event_name) == []
    assert ess_support.group_of(ess, localcloud, group_id).desired_capacity == 1
    # The third failure in a row at the same checkpoint: reported, and no more instances are paid for.
    assert conclude(config, instance, events, 1) == 0
    (event,) = reported(localcloud, config.event_name)
    assert event["status"] == "failed" and "3 times in a row" in event["error"]
    assert "is not a model" in event["error_tail"]
    assert ess_support.group_of(ess, localcloud, group_id).desired_capacity == 0


def test_progress_between_failures_starts_the_count_again(tmp_path) -> None:
    config = Config(output_dir=tmp_path / "output", state_dir=tmp_path / "state")
    failures = FailedStarts(config)
    assert [failures.add(3), failures.add(3), failures.add(6), failures.add(6)] == [1, 2, 1, 2]
    failures.clear()
    assert failures.add(6) == 1


def test_a_scale_to_zero_the_role_may_not_make_is_reported_as_a_failure(localcloud, tmp_path, quick) -> None:
    ess, group_id, instance, config, events = setup(localcloud, tmp_path, with_group_policy=False)
    assert conclude(config, instance, events, 0) == 0
    complete, failed = reported(localcloud, config.event_name)
    assert complete["status"] == "complete"
    assert failed["status"] == "failed" and "ess:ModifyScalingGroup" in failed["error"]
    assert ess_support.group_of(ess, localcloud, group_id).desired_capacity == 1


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        Receiver.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}')

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_webhook_gets_the_result_and_a_bad_one_is_logged_not_fatal(tmp_path, caplog) -> None:
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    keys = StaticCredentials(Keys("id", "secret"))
    # No event is configured: the clients are made, and never called.
    unused = "http://127.0.0.1:9"
    instance = Instance("i-1", "cn-hangzhou", RpcClient(unused, "2014-05-26", keys),
                        RpcClient(unused, "2022-02-22", keys), keys)
    summary = {"status": "complete", "global_step": 6, "max_steps": 6, "final_checkpoint": "/out/checkpoint-6"}
    try:
        url = f"http://127.0.0.1:{server.server_port}/robot/send?access_token=s3cr3t"
        config = Config(output_dir=tmp_path, event_name=None, notify_webhook=url)
        assert Ending(config, instance, EventLog(tmp_path / "e.jsonl", 1)).notify(summary)
        (body,) = Receiver.received
        assert body["msgtype"] == "text" and "training complete at step 6/6" in body["text"]["content"]
        assert body["result"] == summary
    finally:
        server.shutdown()
    for url in ("http://127.0.0.1:9/closed?access_token=s3cr3t", "ftp://example.com/?access_token=s3cr3t"):
        config = Config(output_dir=tmp_path, event_name=None, notify_webhook=url)
        assert not Ending(config, instance, EventLog(tmp_path / "e.jsonl", 1)).notify(summary)
    assert "webhook did not take the result" in caplog.text
    assert "s3cr3t" not in caplog.text


def test_an_instance_tagged_not_to_train_does_not(localcloud, tmp_path) -> None:
    """infer.yml's instance boots the training image; its agent sees the tag and leaves training alone."""
    from alibabacloud_ecs20140526 import models as ecs_models

    _ess, _group_id, instance, config, _events = setup(localcloud, tmp_path, complete=False)
    assert no_training_tag(config, instance) is None
    localcloud.client("ecs").tag_resources(ecs_models.TagResourcesRequest(
        region_id=localcloud.region, resource_type="instance", resource_id=[instance.instance_id],
        tag=[ecs_models.TagResourcesRequestTag(key="train-agent", value="off")]))
    assert no_training_tag(config, instance) == "train-agent=off"
    config.no_training_tag = "train-agent=other"
    assert no_training_tag(config, instance) is None


def test_a_training_that_cannot_start_is_reported_and_stops_the_group_at_the_failure_limit(
        localcloud, tmp_path, monkeypatch, quick) -> None:
    """The whole start, three times as systemd would restart it: swift dies while it loads (a model that
    does not load), the agent counts it, and the third time reports the error and sets the group to 0."""
    import oss2

    from ..localcloud.oss_support import oss2_bucket, root_keys

    ess, group_id, member = ess_support.member_held_at_scale_in(localcloud, ZONE)
    bucket = unique("failing")
    oss2_bucket(localcloud, root_keys(localcloud), bucket).create_bucket(oss2.BUCKET_ACL_PRIVATE)
    instance = as_instance(localcloud, member.instance_id, [
        *POLICIES.oss_training_policy(bucket, ["model/"], ["output/"])["Statement"],
        *POLICIES.training_agent_statements(localcloud.region),
        *POLICIES.scaling_group_policy(localcloud.region, group_id)["Statement"]])
    endpoint = f"http://{localcloud.endpoint}"
    monkeypatch.setattr(train_agent.run, "this_instance", lambda _config, _metadata: instance)
    swift = tmp_path / "swift"
    swift.write_text("#!/bin/sh\necho 'OSError: /mnt/oss-data/model does not appear to have a config.json' >&2\n"
                     "exit 1\n")
    swift.chmod(0o755)
    (tmp_path / "mnt").mkdir()
    config = Config(output_dir=tmp_path / "mnt" / "output", swift=str(swift), swift_version="4.6.0",
                    log_dir=tmp_path / "log", state_dir=tmp_path / "state", lease_bucket=bucket,
                    oss_endpoint=localcloud.oss_endpoint, api_endpoint=endpoint, notice_poll_interval=0,
                    scale_in_poll_interval=0, load_with_torch=False, event_name=unique("training"),
                    metadata_url="http://127.0.0.1:9")
    logs = setup_logging(config.log_dir)
    try:
        codes = [train_agent.run.run(config, *logs) for _start in range(3)]
    finally:
        for handle in logs:
            handle.close()
        LOG.handlers.clear()
    assert codes == [1, 1, 0]
    (event,) = reported(localcloud, config.event_name)
    assert event["status"] == "failed" and "3 times in a row" in event["error"]
    assert "does not appear to have a config.json" in event["error_tail"]
    assert ess_support.group_of(ess, localcloud, group_id).desired_capacity == 0
