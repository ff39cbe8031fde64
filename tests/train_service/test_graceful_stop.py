"""A graceful stop: a spot reclaim notice or SIGTERM has ms-swift save at the end of its step and stop.

The notice comes from a metadata service on localhost that speaks ECS's token flow; the training is
the real `swift sft` of the tiny model, whose output is compared with the uninterrupted run's.
"""

from __future__ import annotations

import ast
import http.server
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.spotfirst.finetune.plugins.filter import chaos, training
from ansible_collections.spotfirst.finetune.plugins.module_utils import training_state
from train_agent.checkpoints import check_checkpoint
from train_agent.cloud import Metadata
from train_agent.completion import completion, last_line
from train_agent.config import Config
from train_agent.events import EventLog
from train_agent.protocol import (
    CLOCK_MARK,
    COMPLETE_MARKER,
    EVENTS_DIR,
    LEASE_MARK,
    LEASE_WAIT_MARK,
    MANIFEST_NAME,
    STOP_MARK,
    STOPPED_MARK,
    SWIFT_STOP_FILE,
)
from train_agent.stopping import NOTICE_PATH, GracefulStop, Handover, NoticeWatcher, TrainerStop
from train_agent.swift import CALLBACKS_PLUGIN, swift_command

from ..adapters import final_adapter, read_safetensors
from ..localcloud import ecs_support, ess_support
from ..localcloud.oss_support import oss2_bucket, root_keys, unique
from ..polling import wait_for
from .conftest import SAVE_STEPS, TOTAL_STEPS, agent_command, agent_config, agent_env

pytestmark = pytest.mark.slow

TERMINATES_AT = "2026-12-01T15:00:00Z"


def termination_in(seconds: float) -> str:
    """spot/termination-time for a reclaim `seconds` from now, as ECS writes it (UTC, whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


class MetadataService(http.server.ThreadingHTTPServer):
    """ECS's metadata service as far as the notice goes: tokens, then termination-time (404 without a notice)."""

    def __init__(self, notice_path: str, entries: dict[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), MetadataHandler)
        self.notice_path = notice_path
        self.notice: str | None = None
        self.entries = {f"/latest/meta-data/{name}": value for name, value in (entries or {}).items()}
        self.tokens: set[str] = set()
        self.reads = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class MetadataHandler(http.server.BaseHTTPRequestHandler):
    server: MetadataService

    def do_PUT(self) -> None:
        if self.path != "/latest/api/token" or not self.headers.get("X-aliyun-ecs-metadata-token-ttl-seconds"):
            self.answer(400, "")
            return
        token = secrets.token_hex(16)
        self.server.tokens.add(token)
        self.answer(200, token)

    def do_GET(self) -> None:
        if self.headers.get("X-aliyun-ecs-metadata-token") not in self.server.tokens:
            self.answer(401, "Unauthorized")
        elif self.path == self.server.notice_path and self.server.notice:
            self.server.reads += 1
            self.answer(200, self.server.notice)
        elif self.path in self.server.entries:
            self.answer(200, self.server.entries[self.path])
        else:
            self.server.reads += 1
            self.answer(404, "Not Found")

    def answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def metadata_service() -> Iterator[Callable[..., MetadataService]]:
    """Start metadata services (entries: instance-id, region-id, ...); stopped after the test."""
    started: list[MetadataService] = []

    def start(**entries: str) -> MetadataService:
        service = MetadataService("/latest/meta-data/" + NOTICE_PATH, entries)
        threading.Thread(target=service.serve_forever, daemon=True).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.shutdown()
        service.server_close()


@pytest.fixture
def metadata(metadata_service: Callable[..., MetadataService]) -> MetadataService:
    return metadata_service()


def handover_for(stop: GracefulStop, tmp_path: Path, stop_file: Path) -> Handover:
    """How the agent asks for a stop: latching `stop`, its event log in `tmp_path`, the stop file at `stop_file`."""
    return Handover(stop, TrainerStop(stop, stop_file=stop_file), EventLog(tmp_path / "events.jsonl", 0))


def test_the_notice_is_read_with_a_token_and_a_refused_token_is_renewed(metadata: MetadataService,
                                                                        tmp_path: Path) -> None:
    stop = GracefulStop()
    watcher = NoticeWatcher(Metadata(metadata.url), 1.0, handover_for(stop, tmp_path, Path("/nonexistent-dir/stop")))
    assert watcher.poll() is False
    assert metadata.reads == 1
    metadata.tokens.clear()  # the token expired
    metadata.notice = TERMINATES_AT
    assert watcher.metadata.get(NOTICE_PATH) == TERMINATES_AT
    assert watcher.poll() is True
    assert stop.reason == f"spot reclaim notice (the instance terminates at {TERMINATES_AT})"


def test_an_unreachable_metadata_service_is_not_a_notice(tmp_path: Path) -> None:
    stop = GracefulStop()
    # The discard port: nothing listens.
    watcher = NoticeWatcher(Metadata("http://127.0.0.1:9"), 1.0, handover_for(stop, tmp_path, tmp_path / "stop"))
    assert watcher.poll() is False
    assert stop.reason is None
    assert not (tmp_path / "stop").exists()


def steps_in(output: Path) -> list[int]:
    try:
        return training_state.logging_steps((output / "logging.jsonl").read_text())
    except FileNotFoundError:
        return []


Stopper = Callable[[subprocess.Popen[bytes]], None]


def stop_during_training(command: list[str], output: Path, stop: Stopper) -> int:
    """Start the agent, call `stop(process)` two steps past the first periodic save; the agent's exit code."""
    process = subprocess.Popen(command, env=agent_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        wait_for(lambda: len(steps_in(output)) >= SAVE_STEPS + 2, 600, interval=0.05,
                 what=f"step {SAVE_STEPS + 2}")
        stop(process)
        return process.wait(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def saved_step(output: Path) -> int:
    return max(int(path.name.split("-")[1]) for path in output.glob("checkpoint-*"))


def assert_stopped_gracefully(output: Path, reason: str, log: Path | None = None) -> int:
    """The trainer saved the step it stopped at, the checkpoint is valid, and training is not complete."""
    newest = saved_step(output)
    assert SAVE_STEPS + 2 <= newest < TOTAL_STEPS
    assert steps_in(output)[-1] == newest, "steps were trained after the last save"
    # The trainer exited at the stop's save (train_agent_stop): no end-of-training line, which ms-swift
    # would write after a graceful stop too.
    assert "last_model_checkpoint" not in last_line(output / "logging.jsonl")
    assert completion(output) is None
    assert not (output / COMPLETE_MARKER).exists()
    assert (output / f"checkpoint-{newest}" / MANIFEST_NAME).is_file()
    assert check_checkpoint(output / f"checkpoint-{newest}", newest, Config(output_dir=output)) is None
    assert not Path(SWIFT_STOP_FILE).exists()
    text = (log or output.parent / "train-service-log" / "train.log").read_text()
    assert f"{STOPPED_MARK} on {reason}: {output / f'checkpoint-{newest}'} is valid" in text
    assert f"{STOP_MARK} saved step {newest} as asked; the trainer exits" in text
    return newest


def test_a_reclaim_notice_saves_the_step_in_progress_and_the_resume_loses_nothing(
        metadata: MetadataService, write_config, train_venv: Path, trained: Path, tmp_path: Path) -> None:
    output = tmp_path / "output"
    config = write_config(output, notice_poll_interval=0.1, metadata_url=metadata.url)
    command = agent_command(str(train_venv / "bin" / "python"), config)

    def notice(_process: subprocess.Popen[bytes]) -> None:
        metadata.notice = TERMINATES_AT

    assert stop_during_training(command, output, notice) == 0
    newest = assert_stopped_gracefully(output, f"spot reclaim notice (the instance terminates at {TERMINATES_AT})")

    metadata.notice = None
    log_before = len((tmp_path / "train-service-log" / "train.log").read_text())
    resumed = subprocess.run(command, env=agent_env(), capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    start = training.train_log_resume((tmp_path / "train-service-log" / "train.log").read_text()[log_before:])
    assert (start["resumed_from"], start["first_step"]) == (newest, newest + 1)
    assert json.loads((output / COMPLETE_MARKER).read_text())["global_step"] == TOTAL_STEPS
    (output / COMPLETE_MARKER).unlink()
    assert f"global step {TOTAL_STEPS} of {TOTAL_STEPS}" in completion(output)
    assert read_safetensors(final_adapter(output)) == read_safetensors(final_adapter(trained))


def test_sigterm_is_a_graceful_stop_as_systemctl_stop_sends_it(write_config, train_venv: Path, tmp_path: Path) -> None:
    output = tmp_path / "output"
    config = write_config(output)
    command = agent_command(str(train_venv / "bin" / "python"), config)
    # KillMode=mixed: systemd signals the agent alone.
    assert stop_during_training(command, output, lambda process: process.send_signal(signal.SIGTERM)) == 0
    assert_stopped_gracefully(output, "SIGTERM")


SLOW_STEPS_PLUGIN = """
import os
import time

from swift.callbacks.base import TrainerCallback
from swift.callbacks.mapping import callbacks_map


class SlowSteps(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(2.5)
        return control


class SlowLoad(TrainerCallback):
    # Before the handover callback says that the trainer has loaded: a model that takes long to load.
    def on_init_end(self, args, state, control, **kwargs):
        time.sleep(float(os.environ["TEST_SLOW_LOAD_SECONDS"]))
        return control


callbacks_map["test_slow_steps"] = SlowSteps
callbacks_map["test_slow_load"] = SlowLoad
"""


@dataclass
class CloudAgent:
    """The agent of one (localcloud) instance: its command, environment, metadata service and train.log."""

    command: list[str]
    env: dict[str, str]
    metadata: MetadataService
    log: Path

    def start(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def read_log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


@dataclass
class CloudAgents:
    bucket: str  # the lease's
    make: Callable[..., CloudAgent]  # (name, instance id, slow=False, slow_load=0, **config overrides)


@pytest.fixture
def cloud_agents(metadata_service: Callable[..., MetadataService], write_config, train_venv: Path,
                 workload: Path, localcloud: Any, tmp_path: Path) -> CloudAgents:
    """Agents of localcloud instances that train into one output directory, with a lease on one bucket.

    `slow=True` slows the instance's steps (a sleep after each, which leaves the arithmetic alone): the
    tiny model trains a step in a fraction of a second, and another instance must load meanwhile.
    `slow_load` seconds are spent loading, before the trainer says it has loaded.
    """
    bucket = unique("handover")
    oss2_bucket(localcloud, root_keys(localcloud), bucket).create_bucket()
    env = agent_env({**os.environ, "ALIBABA_CLOUD_ACCESS_KEY_ID": localcloud.access_key_id,
                     "ALIBABA_CLOUD_ACCESS_KEY_SECRET": localcloud.access_key_secret})
    slow_plugin = tmp_path / "slow_steps.py"
    slow_plugin.write_text(SLOW_STEPS_PLUGIN)

    def make(name: str, instance_id: str, slow: bool = False, slow_load: float = 0, **overrides: Any) -> CloudAgent:
        metadata = metadata_service(**{"instance-id": instance_id, "region-id": localcloud.region})
        arguments = dict(agent_config(train_venv, workload, tmp_path / "output")["arguments"])
        callbacks = ["test_slow_steps"] * slow + ["test_slow_load"] * (slow_load > 0)
        if callbacks:
            arguments.update(external_plugins=[str(slow_plugin)], callbacks=callbacks)
        config = write_config(tmp_path / "output", log_dir=str(tmp_path / f"log-{name}"), notice_poll_interval=0.1,
                              arguments=arguments, metadata_url=metadata.url, lease_bucket=bucket,
                              lease_key="output/.train-lease", oss_endpoint=localcloud.oss_endpoint,
                              api_endpoint=f"http://{localcloud.endpoint}", lease_heartbeat=1, lease_expiry=30,
                              scale_in_poll_interval=0.2, **overrides)
        path = config.rename(tmp_path / f"config-{name}.json")
        command = agent_command(str(train_venv / "bin" / "python"), path)
        return CloudAgent(command, {**env, "TEST_SLOW_LOAD_SECONDS": str(slow_load)}, metadata,
                          tmp_path / f"log-{name}" / "train.log")

    return CloudAgents(bucket, make)


def stop_all(*processes: subprocess.Popen[bytes] | None) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


def test_two_instances_hand_over_through_the_lease_and_train_each_step_once(
        cloud_agents: CloudAgents, trained: Path, localcloud: Any, tmp_path: Path) -> None:
    """On the notice the reclaimed instance trains on while its replacement loads, then hands over at once."""
    net = ecs_support.make_network(localcloud, cidr="172.16.10.0/24")
    old_id, new_id = ecs_support.run(localcloud, net, amount=2)
    output = tmp_path / "output"
    agents = {"old": cloud_agents.make("old", old_id, slow=True), "new": cloud_agents.make("new", new_id)}
    services = {name: item.metadata for name, item in agents.items()}
    log = {name: item.log for name, item in agents.items()}

    def read(path: Path) -> str:
        return path.read_text() if path.exists() else ""

    old = agents["old"].start()
    new = None
    try:
        wait_for(lambda: len(steps_in(output)) >= SAVE_STEPS + 2, 600, interval=0.05,
                 what=f"step {SAVE_STEPS + 2} on the old instance")
        # The notice comes first, as the group launches the replacement on it (ECS's 5 minutes).
        services["old"].notice = termination_in(300)
        wait_for(lambda: "training on until a successor has loaded" in read(log["old"]), 60, what="the notice")
        noticed_at = time.time()
        new = agents["new"].start()
        wait_for(lambda: f"{LEASE_WAIT_MARK}: {old_id} holds the lease" in read(log["new"]), 120,
                 what="the replacement to wait for the lease")
        assert old.wait(timeout=300) == 0
        assert new.wait(timeout=900) == 0
    finally:
        stop_all(old, new)

    handed_over = saved_step(output)
    assert f"{STOPPED_MARK} on spot reclaim notice" in read(log["old"])
    # It trained on until the replacement's trainer had loaded (the model, the datasets) and said so.
    assert f"{new_id} has loaded and waits for the training lease: handing over" in read(log["old"])
    assert "training lease given back" in read(log["old"])
    assert f"{LEASE_MARK} ({new_id}): created the lease" in read(log["new"])
    start = training.train_log_resume(read(log["new"]))
    assert start["resumed_from"] > SAVE_STEPS + 1
    resumed_at = output / f"checkpoint-{start['resumed_from']}"
    assert f"resume_from_checkpoint={resumed_at}" in read(log["new"])
    # Every step trained once, in order: the replacement started where the reclaimed instance stopped.
    assert steps_in(output) == list(range(1, TOTAL_STEPS + 1))
    assert handed_over == TOTAL_STEPS
    assert read_safetensors(final_adapter(output)) == read_safetensors(final_adapter(trained))
    bucket = oss2_bucket(localcloud, root_keys(localcloud), cloud_agents.bucket)
    assert bucket.object_exists("output/.train-lease") is False
    assert bucket.object_exists("output/.train-lease.next") is False  # the announcement, taken back
    # From the trainers' own clocks: the old one trained on after the notice, and the two never trained at once.
    events = {name: (output / EVENTS_DIR / f"{name}.jsonl").read_text() for name in (old_id, new_id)}
    assert sum(1 for _, when in chaos.step_times(events[old_id]) if when > noticed_at) >= 2
    handover = chaos.handover(events, old_id, new_id)
    assert handover["first_step_replacement"] == handover["last_step_released"] + 1 == start["first_step"]
    assert handover["trained_at_once"] is False and chaos.trainers_at_once(events) == []
    # The old instance's save and the replacement's resume: seconds, not a cold start's load.
    print(f"training gap of the handover: {handover['training_gap_seconds']} s")
    assert handover["training_gap_seconds"] < 20, handover


def test_a_successor_that_has_loaded_is_reason_enough_to_hand_over(
        cloud_agents: CloudAgents, trained: Path, localcloud: Any, tmp_path: Path) -> None:
    """No notice and no scale-in hook (whether ESS's return to spot passes one is not documented): the holder
    sees the replacement loaded beside the lease, saves at the end of its step and hands over; nothing lost."""
    net = ecs_support.make_network(localcloud, cidr="172.16.11.0/24")
    old_id, new_id = ecs_support.run(localcloud, net, amount=2)
    output = tmp_path / "output"
    old_agent, new_agent = cloud_agents.make("old", old_id, slow=True), cloud_agents.make("new", new_id)
    old = old_agent.start()
    new = None
    try:
        wait_for(lambda: len(steps_in(output)) >= SAVE_STEPS + 2, 600, interval=0.05,
                 what=f"step {SAVE_STEPS + 2} on the old instance")
        new = new_agent.start()
        assert old.wait(timeout=300) == 0
        assert new.wait(timeout=900) == 0
    finally:
        stop_all(old, new)

    old_log, new_log = old_agent.read_log(), new_agent.read_log()
    assert f"{new_id} has loaded and waits beside the lease" in old_log
    assert "spot reclaim notice" not in old_log and "scale-in (" not in old_log
    assert "training lease given back" in old_log
    start = training.train_log_resume(new_log)
    assert start["resumed_from"] > SAVE_STEPS + 1
    # Every step trained once: the replacement started at the step after the holder's handover save.
    assert steps_in(output) == list(range(1, TOTAL_STEPS + 1))
    events = {name: (output / EVENTS_DIR / f"{name}.jsonl").read_text() for name in (old_id, new_id)}
    handover = chaos.handover(events, old_id, new_id)
    assert handover["first_step_replacement"] == handover["last_step_released"] + 1 == start["first_step"]
    assert chaos.trainers_at_once(events) == []
    assert read_safetensors(final_adapter(output)) == read_safetensors(final_adapter(trained))


def test_a_notice_shorter_than_the_successors_load_is_met_with_a_save_and_a_handover_before_the_end(
        cloud_agents: CloudAgents, trained: Path, localcloud: Any, tmp_path: Path) -> None:
    """A reclaim notice of 30 real seconds and a replacement that takes 40 s to load: the reclaimed instance
    does not wait for it past the moment its own save must begin, saves the step in progress and gives the
    lease back before the termination time; the replacement resumes there and nothing is lost."""
    net = ecs_support.make_network(localcloud, cidr="172.16.12.0/24")
    old_id, new_id = ecs_support.run(localcloud, net, amount=2)
    output = tmp_path / "output"
    old_agent = cloud_agents.make("old", old_id, slow=True)
    new_agent = cloud_agents.make("new", new_id, slow_load=40)
    old = old_agent.start()
    new = None
    try:
        wait_for(lambda: len(steps_in(output)) >= SAVE_STEPS + 2, 600, interval=0.05,
                 what=f"step {SAVE_STEPS + 2} on the old instance")
        old_agent.metadata.notice = termination_in(30)
        ends_at = datetime.strptime(old_agent.metadata.notice, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=timezone.utc).timestamp()
        new = new_agent.start()  # the group launches the replacement on the notice
        try:
            assert old.wait(timeout=max(ends_at - time.time(), 0)) == 0
        except subprocess.TimeoutExpired:
            pytest.fail("the reclaimed instance still ran at its termination time (ECS would have killed it)")
        assert new.wait(timeout=900) == 0
    finally:
        stop_all(old, new)

    old_log = old_agent.read_log()
    assert "handing over now, without a successor" in old_log
    assert "training lease given back" in old_log
    events = {name: [json.loads(line) for line in (output / EVENTS_DIR / f"{name}.jsonl").read_text().splitlines()]
              for name in (old_id, new_id)}
    moments = {f"old {item['event']}": item["time"] for item in events[old_id]
               if item["event"] in ("stop", "save", "handed_over")}
    moments.update({f"new {item['event']}": item["time"] for item in events[new_id]
                    if item["event"] in ("loaded", "lease", "resume")})
    first_step = next(item for item in events[new_id] if item["event"] == "step")
    moments["new first step"] = first_step["time"]
    print(f"termination at {ends_at:.3f}; " + ", ".join(f"{name} {when - ends_at:+.1f}s"
                                                         for name, when in sorted(moments.items(), key=lambda i: i[1])))
    # The old instance saved and gave the lease back before the end, and before its successor had loaded.
    assert moments["old save"] < moments["old handed_over"] < ends_at
    assert moments["old handed_over"] < moments["new loaded"]
    # The replacement resumed from the old instance's handover save, the step it stopped at.
    handover_save = [item["step"] for item in events[old_id] if item["event"] == "save"][-1]
    start = training.train_log_resume(new_agent.read_log())
    assert (start["resumed_from"], start["first_step"]) == (handover_save, handover_save + 1)
    assert handover_save > SAVE_STEPS + 2
    # Every step trained once, in order: nothing lost to the reclaim.
    assert steps_in(output) == list(range(1, TOTAL_STEPS + 1))
    handover = chaos.handover({name: (output / EVENTS_DIR / f"{name}.jsonl").read_text() for name in events},
                              old_id, new_id)
    assert handover["first_step_replacement"] == handover["last_step_released"] + 1 == start["first_step"]
    assert chaos.trainers_at_once({name: (output / EVENTS_DIR / f"{name}.jsonl").read_text()
                                   for name in events}) == []
    assert read_safetensors(final_adapter(output)) == read_safetensors(final_adapter(trained))


def test_a_warm_start_loads_the_handover_plugin_and_resumes_only_on_the_go(tmp_path: Path) -> None:
    config = Config(output_dir=tmp_path, arguments={"callbacks": "early_stop"})
    command = swift_command(config, 4, None, gpu=True, warm=True)
    assert command[command.index("--callbacks") + 1:command.index("--callbacks") + 6] == [
        "early_stop", "graceful_exit", "train_agent_clock", "train_agent_stop", "train_agent_handover"]
    assert command[command.index("--external_plugins") + 1] == str(CALLBACKS_PLUGIN)
    assert "--resume_from_checkpoint" not in command
    # A cold start has the trainer's clock, not the wait.
    cold = swift_command(config, 4, None, gpu=True)
    assert cold[cold.index("--callbacks") + 1:cold.index("--callbacks") + 5] == [
        "early_stop", "graceful_exit", "train_agent_clock", "train_agent_stop"]
    assert "train_agent_handover" not in cold
    assert cold[cold.index("--external_plugins") + 1] == str(CALLBACKS_PLUGIN)


def test_the_agent_reads_the_lines_its_plugin_prints(tmp_path: Path) -> None:
    """plugin/callbacks.py imports ms-swift and cannot be imported here: it takes its marks from the protocol
    (the trainer has the agent's package on its PYTHONPATH) and defines none of its own."""
    plugin = ast.parse(CALLBACKS_PLUGIN.read_text())
    imported = {alias.name for node in ast.walk(plugin) if isinstance(node, ast.ImportFrom)
                and node.module == "train_agent.protocol" for alias in node.names}
    assert {"CLOCK_MARK", "GO_FILE_ENV", "READY_MARK", "STOP_MARK", "SWIFT_STOP_FILE"} <= imported
    assigned = {target.id for node in ast.walk(plugin) if isinstance(node, ast.Assign) for target in node.targets
                if isinstance(target, ast.Name)}
    assert not assigned & imported
    events = EventLog(tmp_path / "events" / "i-1.jsonl", 0)
    events.watch(f"{CLOCK_MARK} step 7 at 1764598800.125\n")
    events.watch(f"{CLOCK_MARK} save 9 at 1764598801.5\n")
    events.watch("{'loss': 1.0, 'global_step/max_steps': '8/150'}\n")  # clocked: the step line adds nothing
    events.stop()  # writes it
    written = [json.loads(line) for line in (tmp_path / "events" / "i-1.jsonl").read_text().splitlines()]
    assert written == [{"time": 1764598800.125, "event": "step", "step": 7},
                       {"time": 1764598801.5, "event": "save", "step": 9}]
    # ms-swift 3 has no plugin: its step lines, at the time the agent reads them.
    unclocked = EventLog(tmp_path / "events" / "i-2.jsonl", 0)
    unclocked.watch("{'loss': 1.0, 'global_step/max_steps': '8/150'}\n")
    assert json.loads(unclocked._lines[0])["step"] == 8
    # A restarted agent goes on with the instance's log.
    again = EventLog(tmp_path / "events" / "i-1.jsonl", 0)
    again.add("start")
    again.stop()
    assert len((tmp_path / "events" / "i-1.jsonl").read_text().splitlines()) == 3


def test_a_scale_in_is_a_graceful_stop_whose_lifecycle_action_the_agent_completes(
        cloud_agents: CloudAgents, localcloud: Any, tmp_path: Path) -> None:
    """The group removes the training instance (a SCALE_IN hook holds it): it saves, hands over, then goes."""
    ess, group_id, member = ess_support.member_held_at_scale_in(localcloud, "cn-hangzhou-i", timeout=60)
    output = tmp_path / "output"
    # No successor comes: it trains on for the handover wait, then saves and goes (the hook's 60 s leave
    # room for both).
    trainer = cloud_agents.make("member", member.instance_id, slow=True, handover_wait=3)
    process = trainer.start()
    try:
        wait_for(lambda: len(steps_in(output)) >= SAVE_STEPS + 2, 600, interval=0.05,
                 what=f"step {SAVE_STEPS + 2}")
        ess_support.set_desired(ess, localcloud, group_id, 0)
        assert process.wait(timeout=300) == 0
    finally:
        stop_all(process)
    reason = f"scale-in (Removing:Wait in scaling group {group_id})"
    assert_stopped_gracefully(output, reason, log=trainer.log)
    assert "no successor loaded within 3s: handing over now" in trainer.read_log()
    assert "training lease given back" in trainer.read_log()
    assert "1 lifecycle action(s) completed (CONTINUE)" in trainer.read_log()
    wait_for(lambda: not ess_support.scaling_instances(ess, localcloud, group_id), what="the removal")
