"""train.service trains, is killed, resumes after its last checkpoint and stops once done."""

import importlib.util
import json
import shlex
import time
from pathlib import Path


def load_protocol():
    """The names the agent writes (the collection's training_protocol, by its path: testinfra runs this file
    without the collection on sys.path)."""
    path = Path(__file__).resolve().parents[3] / "plugins" / "module_utils" / "training_protocol.py"
    spec = importlib.util.spec_from_file_location("molecule_train_service_protocol", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PROTOCOL = load_protocol()
OUTPUT = "/mnt/oss-data/output"
LOG = "/root/train-service-log/train.log"
# The checkpoints whose save is over: the trainer writes trainer_state.json last.
SAVED = f"{OUTPUT}/checkpoint-*/trainer_state.json"


def journal(host):
    return host.run("journalctl -u train -n 30").stdout


def wait_for(host, command, timeout, what):
    # Polled on the instance: each command from here is a round trip through Ansible that costs the
    # training beside it a second of CPU.
    waited = host.run(f"timeout {timeout} sh -c {shlex.quote(f'until {command}; do sleep 0.5; done')}")
    assert waited.rc == 0, f"timed out waiting for {what}: {journal(host)}"


def saved_steps(host):
    listing = host.run(f"ls -d {SAVED}").stdout.split()
    return sorted(int(path.split("/")[-2].split("-")[1]) for path in listing)


def test_the_unit_is_enabled_and_ordered_after_the_mount(host):
    service = host.service("train")
    assert service.is_enabled
    unit = host.run("systemctl show train -p RequiresMountsFor -p Restart -p ExecStart").stdout
    required = next(line for line in unit.splitlines() if line.startswith("RequiresMountsFor="))
    # systemd adds the WorkingDirectory (/root) to the list itself.
    assert "/mnt/oss-data" in required.removeprefix("RequiresMountsFor=").split()
    assert "Restart=on-failure" in unit
    assert "/root/train.sh" in unit
    # Root only: the configuration may hold a webhook's token.
    config = host.file("/etc/train-agent/config.json")
    assert (config.user, config.mode) == ("root", 0o600)
    assert json.loads(config.content_string)["failure_limit"] == 3


def test_training_is_killed_resumes_and_stops_when_complete(host):
    assert host.run("systemctl start train").rc == 0
    # The tiny model trains several steps a second: watch for the first save on the instance itself
    # and kill at once (a poll from here takes seconds, long enough for training to finish).
    killed = host.run(f"timeout 900 sh -c 'until ls {SAVED}; do sleep 0.1; done'"
                      " >/dev/null 2>&1 && systemctl kill --signal=SIGKILL train")
    assert killed.rc == 0, f"no checkpoint within 900 s: {journal(host)}"
    killed_at = saved_steps(host)[-1]
    logged = len(host.file(f"{OUTPUT}/logging.jsonl").content_string.splitlines())
    assert not host.file(f"{OUTPUT}/{PROTOCOL.COMPLETE_MARKER}").exists, "training finished before the kill"

    wait_for(host, f"test -e {OUTPUT}/{PROTOCOL.COMPLETE_MARKER}", 900, "the end of the resumed training")
    log = host.file(LOG).content_string
    resumed = [line for line in log.splitlines() if PROTOCOL.RESUME_MARK in line]
    assert resumed, "the restarted agent did not resume"
    step = int(resumed[-1].split("global step ")[1].rstrip(")"))
    assert step == killed_at
    entries = [json.loads(line) for line in host.file(f"{OUTPUT}/logging.jsonl").content_string.splitlines()[logged:]]
    steps = [int(e["global_step/max_steps"].split("/")[0]) for e in entries if "global_step/max_steps" in e]
    assert steps[0] == step + 1
    assert "--resume_from_checkpoint" in log

    wait_for(host, "test \"$(systemctl show train -p ActiveState --value)\" = inactive", 60, "the service to stop")
    assert host.run("systemctl show train -p ExecMainStatus --value").stdout.strip() == "0"


def test_a_complete_training_exits_at_once(host):
    started = time.monotonic()
    assert host.run("systemctl start train").rc == 0
    wait_for(host, "test \"$(systemctl show train -p ActiveState --value)\" = inactive", 30, "the service to exit")
    assert time.monotonic() - started < 30
    assert host.run("systemctl show train -p ExecMainStatus --value").stdout.strip() == "0"
    assert "training already complete" in host.file(LOG).content_string.splitlines()[-1]


def test_the_agent_logs_to_the_journal(host):
    assert "train-agent" in host.run("journalctl -u train --no-pager").stdout
