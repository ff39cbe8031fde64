"""The training agent against real checkpoints of a real `swift sft` run (the tiny model)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ansible_collections.spotfirst.finetune.plugins.filter import training
from ansible_collections.spotfirst.finetune.plugins.module_utils import training_state
from train_agent.checkpoints import ManifestWriter, check_checkpoint, newest_valid_checkpoint
from train_agent.completion import completion, last_line
from train_agent.config import Config
from train_agent.protocol import COMPLETE_MARKER, MANIFEST_NAME, RESUME_MARK
from train_agent.swift import dataset_file, sft_launcher, swift_command, swift_major

from ..polling import wait_for
from .conftest import SAVE_STEPS, TOTAL_STEPS, agent_command, agent_env, run_agent

pytestmark = pytest.mark.slow


def config_for(output_dir: Path, **settings: object) -> object:
    return Config(output_dir=output_dir, **settings)


def drop_completion(output_dir: Path) -> None:
    """Make a finished run look interrupted after its last save."""
    (output_dir / COMPLETE_MARKER).unlink(missing_ok=True)
    lines = (output_dir / "logging.jsonl").read_text().splitlines()
    (output_dir / "logging.jsonl").write_text("\n".join(lines[:-1]) + "\n")


def test_the_run_writes_checkpoints_manifests_and_the_completion_marker(trained: Path) -> None:
    steps = sorted(int(p.name.split("-")[1]) for p in trained.glob("checkpoint-*"))
    assert steps == [*range(SAVE_STEPS, TOTAL_STEPS, SAVE_STEPS), TOTAL_STEPS]
    for step in steps:
        manifest = json.loads((trained / f"checkpoint-{step}" / MANIFEST_NAME).read_text())
        assert manifest["global_step"] == step
        assert {"adapter_model.safetensors", "optimizer.pt", "trainer_state.json"} <= set(manifest["files"])
    marker = json.loads((trained / COMPLETE_MARKER).read_text())
    assert marker["last_model_checkpoint"].endswith(f"checkpoint-{TOTAL_STEPS}")


def test_swift_asks_no_model_hub_at_the_start(trained: Path) -> None:
    """ms-swift's check of the model against its ModelScope repository (7 s of retries on an instance, which
    reaches no hub) is off: nothing in the run's logs comes from a hub listing."""
    logs = trained.parent / "train-service-log"
    text = (logs / "train_error.log").read_text() + (logs / "train.log").read_text()
    assert "--check_model False" in text  # the agent's "running: swift sft ..." line
    assert "listing failed" not in text and "modelscope.cn" not in text


def test_a_complete_training_exits_at_once_without_running_swift(trained: Path, write_config, tmp_path) -> None:
    # swift is /bin/false: had the agent run it, it would exit non-zero.
    config = write_config(trained, swift="/bin/false")
    run = run_agent(config)
    assert run.returncode == 0
    assert "already complete" in run.stdout


def test_a_run_stopped_before_its_marker_gets_the_marker_at_the_next_start(output_copy: Path, write_config) -> None:
    (output_copy / COMPLETE_MARKER).unlink()
    config = write_config(output_copy, swift="/bin/false")
    run = run_agent(config)
    assert run.returncode == 0, run.stderr
    marker = json.loads((output_copy / COMPLETE_MARKER).read_text())
    assert marker["last_model_checkpoint"].endswith(f"checkpoint-{TOTAL_STEPS}")


def test_logging_jsonl_alone_marks_completion_as_in_the_recipe(output_copy: Path) -> None:
    (output_copy / COMPLETE_MARKER).unlink()
    assert "last_model_checkpoint" in completion(output_copy)
    drop_completion(output_copy)
    assert completion(output_copy) is None


def test_a_long_trainings_end_line_marks_completion_however_long_it_is(output_copy: Path) -> None:
    """ms-swift's end line carries the whole log history: 100 KB at 600 steps, more than the tail the agent
    first reads. A real run of the tiny model's end line, its history made that of 4000 steps."""
    (output_copy / COMPLETE_MARKER).unlink()
    lines = (output_copy / "logging.jsonl").read_text().splitlines()
    summary = json.loads(lines[-1])
    summary["log_history"] = summary["log_history"] * (4000 // max(1, len(summary["log_history"])))
    long_line = json.dumps(summary)
    assert len(long_line) > 4 * 65536
    (output_copy / "logging.jsonl").write_text("\n".join([*lines[:-1], long_line]) + "\n\n")
    assert last_line(output_copy / "logging.jsonl") == long_line
    assert "last_model_checkpoint" in completion(output_copy)
    only = output_copy / "only-line.jsonl"  # a file of one line: read back to its start
    only.write_text(long_line)
    assert last_line(only) == long_line
    assert last_line(output_copy / "absent.jsonl") == ""


def test_a_stopped_trainers_last_manifest_scan_writes_only_the_checkpoint_resumed_from(output_copy: Path) -> None:
    """At a handover the next trainer waits for the last scan: it writes the newest checkpoint's manifest (the
    one resumed from) and leaves the others to the next trainer's writer; at the end of training, all."""
    drop_completion(output_copy)
    for manifest in output_copy.glob(f"checkpoint-*/{MANIFEST_NAME}"):
        manifest.unlink()
    writer = ManifestWriter(output_copy, interval=3600)
    writer.start()
    writer.stop(newest_only=True)
    assert sorted(p.parent.name for p in output_copy.glob(f"checkpoint-*/{MANIFEST_NAME}")) == [
        f"checkpoint-{TOTAL_STEPS}"]
    assert check_checkpoint(output_copy / f"checkpoint-{TOTAL_STEPS}", TOTAL_STEPS,
                            Config(output_dir=output_copy, require_manifest=True)) is None
    everything = ManifestWriter(output_copy, interval=3600)
    everything.start()
    everything.stop()
    assert len(list(output_copy.glob(f"checkpoint-*/{MANIFEST_NAME}"))) == len(
        list(output_copy.glob("checkpoint-*")))


def test_the_newest_checkpoint_is_chosen_by_global_step_not_by_mtime(output_copy: Path) -> None:
    drop_completion(output_copy)
    os.utime(output_copy / f"checkpoint-{SAVE_STEPS}", (time.time() + 3600, time.time() + 3600))
    chosen = newest_valid_checkpoint(config_for(output_copy))
    assert chosen == output_copy / f"checkpoint-{TOTAL_STEPS}"


def truncate(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size // 2)


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


CORRUPTIONS = {
    "adapter truncated": (lambda d: truncate(d / "adapter_model.safetensors"), "adapter_model.safetensors"),
    "optimizer truncated": (lambda d: truncate(d / "optimizer.pt"), "optimizer.pt"),
    "optimizer deleted": (lambda d: (d / "optimizer.pt").unlink(), "missing optimizer.pt"),
    "scheduler deleted": (lambda d: (d / "scheduler.pt").unlink(), "missing scheduler.pt"),
    "adapter deleted": (lambda d: (d / "adapter_model.safetensors").unlink(), "no weights"),
    "trainer state deleted": (lambda d: (d / "trainer_state.json").unlink(), "did not finish"),
    "trainer state truncated": (lambda d: truncate(d / "trainer_state.json"), "does not parse"),
    "adapter config deleted": (lambda d: (d / "adapter_config.json").unlink(), "adapter_config.json"),
    "a byte changed": (lambda d: flip_a_byte(d / "README.md"), "sha256 differs from the manifest"),
    "a file grew": (lambda d: (d / "args.json").open("a").write(" "), "the manifest says"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=list(CORRUPTIONS))
def test_a_corrupt_newest_checkpoint_is_skipped_and_logged(output_copy: Path, corruption: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    drop_completion(output_copy)
    newest = output_copy / f"checkpoint-{TOTAL_STEPS}"
    damage, reason = CORRUPTIONS[corruption]
    damage(newest)
    with caplog.at_level(logging.INFO, logger="train-agent"):
        chosen = newest_valid_checkpoint(config_for(output_copy))
    assert chosen == output_copy / "checkpoint-20"
    skipped = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(skipped) == 1
    assert str(newest) in skipped[0] and reason in skipped[0]


def test_a_directory_whose_name_disagrees_with_its_global_step_is_skipped(output_copy: Path) -> None:
    drop_completion(output_copy)
    (output_copy / f"checkpoint-{TOTAL_STEPS}").rename(output_copy / "checkpoint-99")
    problem = check_checkpoint(output_copy / "checkpoint-99", 99, config_for(output_copy))
    assert f"global_step {TOTAL_STEPS}" in problem


def test_without_a_manifest_a_checkpoint_counts_unless_manifests_are_required(output_copy: Path) -> None:
    newest = output_copy / f"checkpoint-{TOTAL_STEPS}"
    (newest / MANIFEST_NAME).unlink()
    assert check_checkpoint(newest, TOTAL_STEPS, config_for(output_copy)) is None
    assert f"no {MANIFEST_NAME}" in check_checkpoint(
        newest, TOTAL_STEPS, config_for(output_copy, require_manifest=True))


def test_no_valid_checkpoint_starts_a_new_training(output_copy: Path) -> None:
    drop_completion(output_copy)
    for directory in output_copy.glob("checkpoint-*"):
        (directory / "optimizer.pt").unlink()
    assert newest_valid_checkpoint(config_for(output_copy)) is None


@pytest.mark.parametrize(("major", "present", "absent"), [
    (3, ["--train_type", "--overwrite_output_dir"], ["--tuner_type", "--callbacks"]),
    (4, ["--tuner_type", "--callbacks"], ["--train_type", "--overwrite_output_dir"]),
])
def test_argument_names_follow_the_installed_ms_swift(tmp_path: Path, major: int, present: list[str],
                                                      absent: list[str]) -> None:
    config = config_for(tmp_path / "output", swift="swift",
                        arguments={"model": "m", "tuner_type": "lora", "torch_dtype": "bfloat16",
                                   "overwrite_output_dir": True, "dataset": ["a#500", "b#500"], "deepspeed": None})
    command = swift_command(config, major, tmp_path / "output" / "checkpoint-10", gpu=True)
    assert command[:2] == ["swift", "sft"]
    for flag in present:
        assert flag in command
    for flag in absent:
        assert flag not in command
    assert "--deepspeed" not in command
    assert command[command.index("--dataset") + 1:command.index("--dataset") + 3] == ["a#500", "b#500"]
    assert command[-2:] == ["--resume_from_checkpoint", str(tmp_path / "output" / "checkpoint-10")]
    assert command[command.index("--torch_dtype") + 1] == "bfloat16"
    if major == 4:
        assert command[command.index("--callbacks") + 1] == "graceful_exit"
    assert command[command.index("--check_model") + 1] == "False"  # instances reach no model hub
    kept = config_for(tmp_path / "output", swift="swift", arguments={"model": "m", "check_model": True})
    assert swift_command(kept, major, None, gpu=True).count("--check_model") == 1
    assert "True" in swift_command(kept, major, None, gpu=True)


def test_swift_sft_starts_without_the_launchers_extra_python(train_venv: Path, tmp_path: Path, trained: Path) -> None:
    """`swift sft` is the `swift` launcher importing ms-swift only to start swift/cli/sft.py with the same
    python (a second of start-up at each resume): the agent starts that script itself, and keeps the
    launcher where it does more (torchrun with NPROC_PER_NODE or NNODES) or is not the training python's."""
    python, swift = str(train_venv / "bin" / "python"), str(train_venv / "bin" / "swift")
    launcher = sft_launcher(config_for(tmp_path, python=python, swift=swift))
    assert launcher[0] == python and launcher[1].endswith("/swift/cli/sft.py") and Path(launcher[1]).is_file()
    command = swift_command(config_for(tmp_path, arguments={"model": "m"}), 4, None, gpu=False, launcher=launcher)
    assert command[:3] == [*launcher, "--model"]
    torchrun = config_for(tmp_path, python=python, swift=swift, env={"NPROC_PER_NODE": "2"})
    assert sft_launcher(torchrun) == [swift, "sft"]
    assert sft_launcher(config_for(tmp_path, python="/usr/bin/python3", swift=swift)) == [swift, "sft"]
    # The real run started the script (the agent logs its command line).
    running = [line for line in (trained.parent / "train-service-log" / "train.log").read_text().splitlines()
               if "running: " in line]
    assert running and all(f"running: {launcher[0]} {launcher[1]} " in line for line in running), running


def test_a_dataset_directory_with_one_data_file_is_passed_as_that_file(tmp_path: Path) -> None:
    """datasets walks a directory for a dozen file patterns (2-4 s per dataset on the s3fs mount at every start):
    a directory whose only data file is its train data is given to ms-swift as that file, except a directory
    ms-swift handles by its name (self-cognition: its file alone would keep {{NAME}} in every answer)."""
    def directory(name: str, *files: str) -> str:
        for file in files:
            (tmp_path / name / file).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / file).write_text("x")
        return str(tmp_path / name)

    one = directory("alpaca", "train.csv", "README.md", ".gitattributes")
    assert dataset_file(f"{one}#500") == f"{one}/train.csv#500"
    assert dataset_file(one) == f"{one}/train.csv"
    for kept in (directory("two", "a.jsonl", "b.jsonl"), directory("nested", "train.csv", "more/extra.csv"),
                 directory("split", "test.csv"), str(tmp_path / "missing"), directory("none", "README.md")):
        assert dataset_file(f"{kept}#10") == f"{kept}#10"
    assert dataset_file("AI-ModelScope/alpaca-gpt4-data-zh#500") == "AI-ModelScope/alpaca-gpt4-data-zh#500"
    cognition = directory("self-cognition", "self_cognition.jsonl")
    config = config_for(tmp_path / "output", arguments={"model": "m", "dataset": [f"{one}#5", f"{cognition}#5"]})
    command = swift_command(config, 4, None, gpu=True)
    assert command[command.index("--dataset") + 1:command.index("--dataset") + 3] == [
        f"{one}/train.csv#5", f"{cognition}#5"]


def test_without_a_gpu_the_cpu_dtype_replaces_bf16(tmp_path: Path) -> None:
    config = config_for(tmp_path, arguments={"torch_dtype": "bfloat16"})
    command = swift_command(config, 4, None, gpu=False)
    assert command[command.index("--torch_dtype") + 1] == "float32"
    assert "--resume_from_checkpoint" not in command


def test_the_installed_ms_swift_version_is_detected(train_venv: Path, tmp_path: Path) -> None:
    config = config_for(tmp_path, python=str(train_venv / "bin" / "python"))
    assert swift_major(config) == 4
    assert swift_major(config_for(tmp_path, swift_version="3.12.6")) == 3


def test_a_bad_configuration_says_what_is_wrong(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"output_dir": str(tmp_path), "typo_setting": 1}))
    run = run_agent(config)
    assert run.returncode == 2
    assert "unknown settings typo_setting" in run.stderr


def saved_checkpoints(output: Path) -> list[int]:
    """Global steps of the checkpoints whose save is over (the trainer writes trainer_state.json last)."""
    steps = []
    for directory in output.glob("checkpoint-*"):
        try:
            json.loads((directory / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        steps.append(int(directory.name.split("-")[1]))
    return sorted(steps)


def test_killed_training_resumes_at_the_step_after_the_last_checkpoint(train_venv: Path, write_config,
                                                                      tmp_path: Path) -> None:
    output = tmp_path / "output"
    config = write_config(output)
    command = agent_command(str(train_venv / "bin" / "python"), config)
    first = subprocess.Popen(command, env=agent_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        # The tiny model trains a step in a fraction of a second: kill as soon as the first save is over
        # (waiting for its manifest let a loaded machine reach the last step before the kill).
        wait_for(lambda: saved_checkpoints(output), 600, interval=0.02, what="the first checkpoint")
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    saved = saved_checkpoints(output)[-1]
    assert saved < TOTAL_STEPS, "the run finished before it could be killed"
    logged_before = len((output / "logging.jsonl").read_text().splitlines())
    steps_before = training_state.logging_steps((output / "logging.jsonl").read_text())
    log_before = len((tmp_path / "train-service-log" / "train.log").read_text())

    second = subprocess.run(command, env=agent_env(), capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    log = (tmp_path / "train-service-log" / "train.log").read_text()
    resumed_from = [line for line in log.splitlines() if RESUME_MARK in line][-1]
    newest = int(resumed_from.split("global step ")[1].rstrip(")"))
    assert newest == saved
    entries = [json.loads(line) for line in (output / "logging.jsonl").read_text().splitlines()[logged_before:]]
    steps = [int(entry["global_step/max_steps"].split("/")[0]) for entry in entries if "global_step/max_steps" in entry]
    assert steps[0] == newest + 1
    assert (output / COMPLETE_MARKER).exists()
    # What chaos.yml reads of the same resume: the second start's train.log (a replacement's log holds
    # its own starts only) and logging.jsonl of both runs.
    assert training.train_log_resume(log[log_before:]) == {
        "started": True, "fresh": False, "checkpoint": str(output / f"checkpoint-{saved}"), "resumed_from": saved,
        "first_step": saved + 1, "max_steps": TOTAL_STEPS}
    logging_jsonl = (output / "logging.jsonl").read_text()
    assert training.steps_lost(training_state.logging_steps(logging_jsonl), len(steps_before), saved) == \
        max(0, steps_before[-1] - saved)

    third = subprocess.run(command, env=agent_env(), capture_output=True, text=True, timeout=60)
    assert third.returncode == 0
    assert "already complete" in third.stdout
