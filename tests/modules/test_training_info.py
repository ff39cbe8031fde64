"""alicloud_training_info (where training stands, from its output prefix) and the wait_until action
that polls it, against localcloud's OSS."""

from __future__ import annotations

import json
import re
import time

import alibabacloud_oss_v2 as oss
from ansible_collections.spotfirst.finetune.plugins.module_utils.training_protocol import (
    COMPLETE_MARKER,
    EVENTS_DIR,
    MANIFEST_NAME,
)

from ..localcloud.oss_support import unique
from .conftest import task


def oss_client(localcloud) -> oss.Client:
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(localcloud.access_key_id,
                                                                        localcloud.access_key_secret)
    cfg.region, cfg.endpoint, cfg.use_path_style = localcloud.region, localcloud.oss_endpoint, True
    return oss.Client(cfg)


def logging_jsonl(last: int, total: int) -> str:
    return "".join(json.dumps({"loss": 1.0, "global_step/max_steps": f"{step}/{total}"}) + "\n"
                   for step in range(1, last + 1))


def info(bucket: str, name: str, **keywords) -> dict:
    return task(name, "alicloud_training_info", {"bucket": bucket, "prefix": "output/",
                                                 "lease_key": "output/.train-lease"}, **keywords)


def test_nothing_written_yet_is_not_started(playbook, localcloud) -> None:
    bucket = unique("ti-empty")
    run = playbook([task("bucket", "alicloud_oss_bucket", {"name": bucket}), info(bucket, "empty")])
    assert run.returncode == 0, run.output[-3000:]
    empty = run["empty"]
    assert (empty["state"], empty["step"], empty["newest_checkpoint"], empty["lease"]) == ("not started", 0, 0, None)
    assert not empty["complete"] and empty["max_steps"] is None and empty["checkpoints"] == []


def test_a_bucket_that_does_not_exist_is_no_bucket(playbook) -> None:
    run = playbook([info(unique("ti-none"), "none")])
    assert run.returncode == 0, run.output[-3000:]
    none = run["none"]
    assert (none["state"], none["step"], none["object_keys"], none["complete"]) == ("no bucket", 0, [], False)


def test_steps_checkpoints_rate_lease_and_the_waits_on_them(playbook, localcloud) -> None:
    bucket = unique("ti-training")
    assert playbook([task("bucket", "alicloud_oss_bucket", {"name": bucket})]).returncode == 0
    client, now = oss_client(localcloud), time.time()

    def put(key: str, body: str) -> None:
        client.put_object(oss.PutObjectRequest(bucket=bucket, key=f"output/{key}", body=body.encode()))

    put("logging.jsonl", logging_jsonl(20, 100))
    for step in (10, 20):
        put(f"checkpoint-{step}/adapter_model.safetensors", "w")
        put(f"checkpoint-{step}/trainer_state.json", "{}")
    put(f"checkpoint-10/{MANIFEST_NAME}", "{}")
    put("checkpoint-30/adapter_model.safetensors", "half a save")  # no trainer_state.json: not complete
    # The trainer's event log: one step a second for the last 20 seconds (60 steps a minute); an older one.
    put(f"{EVENTS_DIR}/i-old.jsonl", json.dumps({"time": now - 900, "event": "step", "step": 1}) + "\n")
    put(f"{EVENTS_DIR}/i-now.jsonl", "".join(
        json.dumps({"time": round(now - 20 + step, 3), "event": "step", "step": step}) + "\n" for step in range(1, 21)))
    put(".train-lease", json.dumps({"holder": "i-now", "heartbeat": now - 3, "acquired": now - 25}))

    run = playbook([
        info(bucket, "training"),
        task("wait met", "wait_until", {
            "module": "spotfirst.finetune.alicloud_training_info",
            "module_args": {"bucket": bucket, "prefix": "output/"},
            "until": "result.newest_checkpoint > 10", "progress": "result.step | string", "delay": 1}),
        task("wait too long", "wait_until", {
            "module": "spotfirst.finetune.alicloud_training_info",
            "module_args": {"bucket": bucket, "prefix": "output/"},
            "until": "result.newest_checkpoint > 50", "what": "checkpoint 50",
            "progress": "'step %s/%s' % (result.step, result.max_steps)", "timeout": 2, "delay": 1},
            ignore_errors=True),
    ])
    assert run.returncode == 0, run.output[-3000:]
    state = run["training"]
    assert (state["state"], state["step"], state["max_steps"], state["percent"]) == ("training", 20, 100, 20.0)
    assert state["checkpoints"] == [10, 20] and state["valid_checkpoints"] == [10] and state["newest_checkpoint"] == 20
    assert 0 <= state["newest_checkpoint_age_seconds"] < 60 and not state["complete"]
    assert state["trainer"] == "i-now" and abs(state["steps_per_minute"] - 60) < 1
    assert abs(state["eta_seconds"] - 80) < 2
    assert state["lease"]["holder"] == "i-now" and 2 <= state["lease"]["heartbeat_age_seconds"] < 60
    met = run["wait met"]
    assert not met.get("failed") and met["newest_checkpoint"] == 20 and met["progress"] == ["20"]
    too_long = run["wait too long"]
    assert too_long["failed"] and too_long["attempts"] >= 2 and too_long["waited"] >= 2
    assert re.match(r"Gave up after \d+s waiting for checkpoint 50; last seen: step 20/100$", too_long["msg"])

    put(COMPLETE_MARKER, "{}")
    done = playbook([
        task("complete", "alicloud_training_info", {"bucket": bucket, "prefix": "output/", "event_logs": True})])
    assert done.returncode == 0, done.output[-3000:]
    complete = done["complete"]
    assert complete["complete"] and complete["state"] == "complete" and complete["steps_per_minute"] is None
    assert sorted(complete["event_logs"]) == ["i-now", "i-old"]
    assert [e["step"] for e in complete["event_logs"]["i-now"]] == list(range(1, 21))
