#!/usr/bin/env python3
"""The training agent: the recipe's /root/train.sh made robust.

Started at boot by train.service, after the bucket is mounted:

1. Training complete (the agent's completion marker is there, or the last line of logging.jsonl
   names `last_model_checkpoint` *and* that checkpoint's trainer state reached `max_steps`: a
   graceful stop writes the same line): exit 0 and do nothing else.
2. Otherwise pick the newest *valid* checkpoint by global step (not by mtime). A checkpoint is valid
   when trainer_state.json parses and its global_step matches the directory, the weights, optimizer
   and scheduler files are complete (format checks; loaded with torch/safetensors when importable)
   and the manifest this agent writes after each save (sizes and sha256) matches. Invalid ones are
   skipped and logged.
3. Run `swift sft` with the configured arguments, `--resume_from_checkpoint` when there is a
   checkpoint, with the argument names of the installed ms-swift (3.x `--train_type`, 4.x
   `--tuner_type`). While it runs, every finished checkpoint gets its manifest.
4. Stop gracefully on a spot reclaim notice (the metadata service's
   `instance/spot/termination-time`), on SIGTERM (`systemctl stop`, a shutdown) or SIGINT: ms-swift 4's
   `graceful_exit` callback saves a checkpoint at the end of the step in progress and stops; the agent
   writes its manifest, checks it and exits 0 without marking training complete.
5. Log to /root/train-service-log/train.log and train_error.log (as the recipe does) and to
   stdout/stderr, which systemd sends to the journal.
6. When training is complete, or has failed more often in a row than `failure_limit` allows: report a
   CloudMonitor custom event (and POST the same to a webhook, if one is set) and set the scaling
   group's desired capacity to 0, so that nothing is paid for an instance that no longer trains.

Standard library only: it runs with the system python3 or the training environment's python.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

# train_cloud.py is installed beside the agent.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_cloud import (
    METADATA_URL,
    CloudError,
    Keys,
    Lease,
    Metadata,
    OssClient,
    RoleCredentials,
    RpcClient,
    ScaleIn,
    StaticCredentials,
    instance_exists,
    instance_tags,
    post_webhook,
    put_custom_event,
    scaling_group_of,
)

LOG = logging.getLogger("train-agent")

DEFAULT_CONFIG = Path("/etc/train-agent/config.json")
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
MANIFEST_NAME = "train_agent_manifest.json"
COMPLETE_MARKER = "train_agent_complete.json"
LOG_DIR = Path("/root/train-service-log")
TRAIN_LOG = "train.log"
ERROR_LOG = "train_error.log"
# The lines of train.log the playbooks read (playbooks/filter_plugins/training.py imports these): how a
# start chose its checkpoint, and ms-swift's step lines ({'loss': ..., 'global_step/max_steps': '7/150'}).
RESUME_MARK = "newest valid checkpoint"
RESUME_RE = re.compile(RESUME_MARK + r": (?P<path>\S+) \(global step (?P<step>\d+)\)")
FRESH_MARK = "no valid checkpoint"
STEP_KEY = "global_step/max_steps"
STEP_RE = re.compile(r"""['"]""" + STEP_KEY + r"""['"]: ['"](?P<step>\d+)/(?P<max>\d+)['"]""")
TRAINER_STATE = "trainer_state.json"
STOPPED_MARK = "stopped gracefully"
LEASE_MARK = "holding the training lease"
LEASE_WAIT_MARK = "waiting for the training lease"
SCALE_IN_MARK = "Removing:Wait"
HEARTBEAT_AGE = re.compile(r" \(heartbeat \d+s ago\)")  # in Lease.try_acquire's reasons
# How often a waiting agent looks at the lease (a GET).
LEASE_POLL = 1.0
# At a handover, each side's look (a GET) is on the critical path twice: the holder looks for a loaded
# successor, which then looks for the lease given back; both while training stands still or waits.
HANDOVER_POLL = 0.2
# ms-swift 4's graceful_exit callback (swift/utils/shutdown_manager.py) stops at the end of a step, after
# a save, when this file exists; a signal would reach only the `swift` launcher, not its trainer child.
SWIFT_STOP_FILE = Path("/tmp/stop")
NOTICE_PATH = "instance/spot/termination-time"
# The agent's ms-swift 4 plugin (installed beside): the trainer's clock, and a trainer that loads while the
# agent waits for the lease. The lines it prints, which the agent reads:
CALLBACKS_PLUGIN = Path(__file__).resolve().parent / "train_callbacks.py"
GO_FILE_ENV = "TRAIN_AGENT_GO_FILE"
READY_MARK = "train-agent-handover: loaded"
CLOCK_RE = re.compile(r"train-agent-clock: (?P<event>step|save) (?P<step>\d+) at (?P<time>\d+(?:\.\d+)?)")
# Each instance's events with their times (agent started, with the machine's boot and the bucket's mount;
# swift started; trainer loaded; lease; checkpoint chosen, with the seconds its validation took; each step
# and save; stop; hand-over), one JSON object a line, at <output_dir>/EVENTS_DIR/<instance id>.jsonl.
EVENTS_DIR = "train_agent_events"
# What a resumable checkpoint needs besides its weights (Hugging Face Trainer's file names).
REQUIRED_STATE_FILES = ("optimizer.pt", "scheduler.pt")
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin")
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# Set, they make the `swift` launcher start the trainer with torchrun (swift/cli/main.py).
TORCHRUN_ENV = ("NPROC_PER_NODE", "NNODES")
# Arguments whose name depends on the ms-swift major version: {canonical: {major: name or None}}.
RENAMED_ARGUMENTS = {
    "tuner_type": {3: "train_type", 4: "tuner_type"},
    "overwrite_output_dir": {3: "overwrite_output_dir", 4: None},
}


class AgentError(Exception):
    """A problem the operator must fix; the message says what and how."""


# --------------------------------------------------------------------------- configuration

@dataclass
class Config:
    """What the role writes to /etc/train-agent/config.json."""

    output_dir: Path
    swift: str = "swift"
    python: str = sys.executable
    log_dir: Path = LOG_DIR
    swift_version: str = "auto"
    # swift sft arguments in order, canonical (ms-swift 4) names; None leaves an argument out.
    arguments: dict[str, Any] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # The dtype used on hosts without a CUDA GPU (bf16 training is a GPU feature).
    cpu_torch_dtype: str | None = "float32"
    require_manifest: bool = False
    load_with_torch: bool = True
    manifest_interval: float = 5.0
    # How often the spot reclaim notice is polled (seconds; 0 does not watch it).
    notice_poll_interval: float = 2.0
    metadata_url: str = METADATA_URL
    # One trainer per output directory (train_cloud.Lease): the lease object's bucket and key, the
    # bucket's endpoint, and where the instance reaches the RPC APIs. No bucket, no lease.
    lease_bucket: str | None = None
    lease_key: str = "output/.train-lease"
    oss_endpoint: str | None = None
    api_endpoint: str = "https://{product}-vpc.{region}.aliyuncs.com"
    lease_expiry: float = 60.0
    lease_heartbeat: float = 10.0
    # How often the agent looks whether its scaling group is removing it (0 does not look).
    scale_in_poll_interval: float = 5.0
    # After a notice or a scale-in, train on for at most this long (seconds) until a successor has
    # loaded, then save and hand over (0: save and stop at once).
    handover_wait: float = 120.0
    # How soon a new event is written to the bucket (seconds): what an instance that is killed has not
    # written yet is missing from its log.
    event_log_interval: float = 0.5
    # When training ends (complete, or given up after `failure_limit` failed starts in a row): the
    # CloudMonitor custom event's name (None reports none), a webhook that takes a JSON POST (a
    # DingTalk robot), and whether the scaling group is set to 0 instances.
    event_name: str | None = "train-service"
    notify_webhook: str | None = None
    scale_to_zero: bool = True
    failure_limit: int = 3
    # Where the agent keeps what outlives one start on this instance (the failed starts in a row).
    state_dir: Path = Path("/var/lib/train-agent")
    # An instance with this tag (key=value) does not train: one launched from the training image for
    # something else (infer.yml's).
    no_training_tag: str | None = "train-agent=off"

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise AgentError(f"no configuration at {path}; apply the train_service role or pass --config") from exc
        except json.JSONDecodeError as exc:
            raise AgentError(f"{path} is not valid JSON ({exc}); re-apply the train_service role") from exc
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise AgentError(f"{path}: unknown settings {', '.join(unknown)}")
        if "output_dir" not in raw:
            raise AgentError(f"{path}: output_dir is required")
        raw["output_dir"] = Path(raw["output_dir"])
        for name in ("log_dir", "state_dir"):
            if name in raw:
                raw[name] = Path(raw[name])
        return cls(**raw)


# --------------------------------------------------------------------------- completion

def last_line(path: Path, window: int = 65536) -> str:
    """The last non-empty line of a text file ('' when there is none), however long it is: ms-swift's
    end-of-training line carries the whole log history (about 170 bytes a step: 100 KB at 600 steps, MBs
    on a long training). Reads back from the end, a growing window at a time, until the line is whole."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            while True:
                start = max(0, size - window)
                handle.seek(start)
                lines = [line for line in handle.read().splitlines() if line.strip()]
                # Whole when a line (or the file's start) comes before it within the window.
                if start == 0 or len(lines) > 1:
                    break
                window *= 4
    except FileNotFoundError:
        return ""
    return lines[-1].decode("utf-8", "replace") if lines else ""


def final_summary(output_dir: Path) -> dict[str, Any] | None:
    """The end-of-training line of logging.jsonl, or None when its last line is not one.

    ms-swift appends it whenever the trainer stops, also after a graceful stop half-way: whether
    training is over is decided from the trainer state of the checkpoint it names.
    """
    line = last_line(output_dir / "logging.jsonl")
    if "last_model_checkpoint" not in line:
        return None
    try:
        summary = json.loads(line)
    except json.JSONDecodeError:
        return None
    return summary if isinstance(summary, dict) and summary.get("last_model_checkpoint") else None


def trainer_progress(checkpoint: Path) -> tuple[int, int] | None:
    """(global_step, max_steps) of a checkpoint's trainer state; None when it cannot be read."""
    try:
        state = json.loads((checkpoint / TRAINER_STATE).read_text())
        return int(state["global_step"]), int(state["max_steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def completion(output_dir: Path) -> str | None:
    """Why training counts as complete, or None when it does not."""
    marker = output_dir / COMPLETE_MARKER
    if marker.is_file():
        return f"completion marker {marker}"
    summary = final_summary(output_dir)
    if summary is None:
        return None
    # The path was written on the instance that trained; the checkpoint is in this output directory.
    progress = trainer_progress(output_dir / Path(summary["last_model_checkpoint"]).name)
    if progress is None or progress[0] < progress[1]:
        return None
    return (f"{output_dir / 'logging.jsonl'} names last_model_checkpoint at global step {progress[0]} "
            f"of {progress[1]}")


def utc_now() -> str:
    """Now, as the completion marker and the manifests record their times (ISO 8601, UTC, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_completion_marker(output_dir: Path) -> None:
    summary = final_summary(output_dir) or {}
    record = {key: summary.get(key) for key in ("last_model_checkpoint", "best_model_checkpoint", "global_step")}
    record["completed_at"] = utc_now()
    atomic_write(output_dir / COMPLETE_MARKER, json.dumps(record, indent=2) + "\n")


# --------------------------------------------------------------------------- checkpoints

def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """checkpoint-N directories, newest (highest global step) first."""
    found = []
    if output_dir.is_dir():
        for entry in output_dir.iterdir():
            match = CHECKPOINT_RE.match(entry.name)
            if match and entry.is_dir():
                found.append((int(match.group(1)), entry))
    return sorted(found, reverse=True)


def check_safetensors(path: Path) -> None:
    """The header parses and the file is exactly as long as the header says."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ValueError(f"{path.name}: truncated (no header)")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > size - 8:
            raise ValueError(f"{path.name}: truncated header")
        header = json.loads(handle.read(header_len))
    end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    if 8 + header_len + end != size:
        raise ValueError(f"{path.name}: {size} bytes, the header describes {8 + header_len + end}")


def check_torch_zip(path: Path) -> None:
    """torch.save's format is a zip archive: the central directory and every CRC must check out."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{path.name}: not a complete torch archive ({exc})") from exc
    if bad is not None:
        raise ValueError(f"{path.name}: member {bad} fails its CRC check")


def check_weight_file(path: Path) -> None:
    if path.suffix == ".safetensors":
        check_safetensors(path)
    else:
        check_torch_zip(path)


def weight_files(directory: Path) -> list[Path]:
    for index_name in SHARD_INDEXES:
        index = directory / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [directory / shard for shard in shards]
    return [directory / name for name in WEIGHT_FILES if (directory / name).is_file()]


def load_with_torch(files: list[Path]) -> None:
    """Load each file with the library that wrote it, when the agent runs where that library is."""
    try:
        import torch
    except ImportError:
        return
    for path in files:
        if path.suffix == ".safetensors":
            try:
                from safetensors import safe_open
            except ImportError:
                continue
            with safe_open(str(path), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118  safe_open is not a mapping
                    handle.get_tensor(key)
        elif path.name != "rng_state.pth":
            torch.load(path, map_location="cpu", weights_only=True)


def preload_torch() -> None:
    """Import torch and safetensors in the background: the checkpoint checks at a handover (the old
    instance's after its last save, the successor's before its go) then do not wait for the import,
    seconds on a busy instance."""
    def load() -> None:
        with contextlib.suppress(ImportError):
            import safetensors.torch  # noqa: F401
            import torch  # noqa: F401

    threading.Thread(target=load, name="preload-torch", daemon=True).start()


def manifest_entries(directory: Path) -> dict[str, dict[str, Any]]:
    return {
        str(path.relative_to(directory)): {"size": path.stat().st_size, "sha256": sha256(path)}
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME and not path.name.startswith(".")
    }


def check_checkpoint(directory: Path, step: int, config: Config) -> str | None:
    """Why the checkpoint cannot be resumed from, or None when it can."""
    try:
        state = json.loads((directory / TRAINER_STATE).read_text())
    except FileNotFoundError:
        return f"{TRAINER_STATE} is missing (the save did not finish)"
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"{TRAINER_STATE} does not parse ({exc})"
    if state.get("global_step") != step:
        return f"{TRAINER_STATE} says global_step {state.get('global_step')}, the directory says {step}"
    try:
        weights = weight_files(directory)
    except (OSError, ValueError, KeyError) as exc:
        return f"the shard index does not parse ({exc})"
    if not weights:
        return f"no weights ({', '.join(WEIGHT_FILES)})"
    if (directory / "adapter_model.safetensors").is_file() or (directory / "adapter_model.bin").is_file():
        try:
            json.loads((directory / "adapter_config.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError) as exc:
            return f"adapter_config.json is missing or does not parse ({exc})"
    state_files = [directory / name for name in REQUIRED_STATE_FILES]
    missing = [path.name for path in weights + state_files if not path.is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    try:
        for path in weights + state_files:
            check_weight_file(path)
    except (ValueError, OSError, KeyError) as exc:
        return str(exc)
    manifest_path = directory / MANIFEST_NAME
    if manifest_path.is_file():
        problem = check_manifest(directory, manifest_path)
        if problem:
            return problem
    elif config.require_manifest:
        return f"no {MANIFEST_NAME} (written by the agent once a save is complete)"
    if config.load_with_torch:
        try:
            load_with_torch(weights + state_files)
        except Exception as exc:  # any failure to load makes the checkpoint unusable
            return f"loading failed: {type(exc).__name__}: {exc}"
    return None


def check_manifest(directory: Path, manifest_path: Path) -> str | None:
    try:
        manifest = json.loads(manifest_path.read_text())["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return f"{MANIFEST_NAME} does not parse ({exc})"
    for name, expected in manifest.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is listed in the manifest but missing"
        if path.stat().st_size != expected["size"]:
            return f"{name}: {path.stat().st_size} bytes, the manifest says {expected['size']}"
        if sha256(path) != expected["sha256"]:
            return f"{name}: sha256 differs from the manifest"
    return None


def newest_valid_checkpoint(config: Config) -> Path | None:
    for step, directory in checkpoints(config.output_dir):
        problem = check_checkpoint(directory, step, config)
        if problem is None:
            LOG.info("%s: %s (global step %d)", RESUME_MARK, directory, step)
            return directory
        LOG.warning("skipping %s: %s", directory, problem)
    return None


class ManifestWriter:
    """Writes the manifest of each checkpoint once its save is over.

    A save is over when trainer_state.json (written last by the Trainer) matches the directory and
    the files have not changed between two looks.
    """

    def __init__(self, output_dir: Path, interval: float) -> None:
        self.output_dir = output_dir
        self.interval = interval
        self._sizes: dict[Path, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="manifests", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, newest_only: bool = False) -> None:
        """A last scan once the trainer is gone. `newest_only`: the checkpoint the next trainer resumes from,
        when it waits for this one (each manifest reads the whole checkpoint back through the mount; the
        next trainer's writer does the others)."""
        self._stop.set()
        self._thread.join()
        self.scan(final=True, newest_only=newest_only)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.scan()
            except OSError as exc:
                LOG.warning("manifest scan: %s", exc)

    def scan(self, final: bool = False, newest_only: bool = False) -> None:
        found = checkpoints(self.output_dir)
        for step, directory in found[:1] if newest_only else found:
            if self._stop.is_set() and not final:
                return  # stop() scans at once
            if (directory / MANIFEST_NAME).exists():
                continue
            try:
                state = json.loads((directory / TRAINER_STATE).read_text())
                sizes = {str(p.relative_to(directory)): p.stat().st_size for p in directory.rglob("*") if p.is_file()}
            except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
                continue
            if state.get("global_step") != step:
                continue
            if not final and self._sizes.get(directory) != sizes:
                self._sizes[directory] = sizes
                continue
            record = {"global_step": step, "written_at": utc_now(),
                      "files": manifest_entries(directory)}
            try:
                atomic_write(directory / MANIFEST_NAME, json.dumps(record, indent=1) + "\n")
            except FileNotFoundError:
                continue  # rotated away by save_total_limit meanwhile
            LOG.info("manifest written for %s", directory.name)


# --------------------------------------------------------------------------- graceful stop

class GracefulStop:
    """Asks the running trainer, once, to save a checkpoint at the end of its step and stop.

    A stop that has time (a reclaim notice, a scale-in) may first wait for a successor: while this
    instance trains with the lease, `successor` names an instance whose trainer has loaded and waits
    for it; training goes on until there is one, for at most `handover_wait` seconds.
    """

    def __init__(self, events: EventLog, stop_file: Path = SWIFT_STOP_FILE) -> None:
        self.stop_file = stop_file
        self.events = events
        self.reason: str | None = None
        self.graceful = True  # False where ms-swift cannot save on request (3.x): the trainer is killed
        self.process: subprocess.Popen[str] | None = None
        self.requested = threading.Event()
        self.successor: Callable[[], str | None] | None = None
        self.handover_wait = 0.0
        self._waiting = False
        self._lock = threading.Lock()

    def clear(self) -> None:
        """A stop file left by an earlier run would stop the next trainer at its first step."""
        self.stop_file.unlink(missing_ok=True)

    def request(self, reason: str, after_handover: bool = False) -> None:
        """Stop now; with `after_handover`, once a successor has loaded (or the wait is over)."""
        with self._lock:
            if self.reason is not None:
                LOG.info("%s: already stopping (%s)", reason, self.reason)
                return
            successor = self.successor
            if after_handover and successor is not None and self.handover_wait > 0:
                if not self._waiting:
                    self._waiting = True
                    threading.Thread(target=self._await_successor, args=(reason, successor), name="handover",
                                     daemon=True).start()
                return
            self.reason = reason
            self.requested.set()
        self.events.add("stop", reason=reason)
        if self.graceful:
            LOG.info("%s: asking swift to save a checkpoint at the end of this step and stop", reason)
        else:
            LOG.warning("%s: this ms-swift cannot save on request; stopping it loses the steps since the last "
                        "checkpoint", reason)
        self.signal_trainer()

    def signal_trainer(self) -> None:
        """The stop file for ms-swift 4 (it may start after this); a kill where ms-swift cannot save."""
        if not self.graceful:
            if self.process is not None:
                kill_tree(self.process.pid)
            return
        try:
            self.stop_file.touch()
        except OSError as exc:
            LOG.error("cannot write %s (%s): swift will not stop by itself", self.stop_file, exc)

    def _await_successor(self, reason: str, successor: Callable[[], str | None]) -> None:
        LOG.info("%s: training on until a successor has loaded (at most %gs)", reason, self.handover_wait)
        deadline = time.monotonic() + self.handover_wait
        warned = False
        while not self.requested.is_set():
            if self.successor is None:  # training ended meanwhile
                with self._lock:
                    self._waiting = False
                return
            try:
                found = successor()
            except (CloudError, OSError) as exc:
                found = None
                if not warned:
                    LOG.warning("cannot read whether a successor waits (%s); retrying", exc)
                    warned = True
            if found:
                LOG.info("%s has loaded and waits for the training lease: handing over", found)
                break
            if time.monotonic() >= deadline:
                LOG.warning("no successor loaded within %gs: handing over now", self.handover_wait)
                break
            self.requested.wait(HANDOVER_POLL)
        with self._lock:
            self._waiting = False
        self.request(reason)

    def abort(self, reason: str) -> None:
        """Stop the trainer at once, without a save: another instance trains into this output now."""
        with self._lock:
            self.reason = reason
            self.requested.set()
        LOG.error("%s: stopping swift without a save", reason)
        if self.process is not None:
            kill_tree(self.process.pid)


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its descendants (`swift` runs its trainer as a child)."""
    def children(parent: int) -> list[int]:
        found = []
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                found += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
        return found

    doomed, pending = [], [pid]
    while pending:
        current = pending.pop()
        doomed.append(current)
        pending += children(current)
    for target in doomed:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            continue


class Poller:
    """A daemon thread that calls `poll()` every `interval` seconds (0: never) until it returns True.

    `look_first`: the first look comes at once rather than after one interval.
    """

    name = "poller"
    look_first = True

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._warned = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def poll(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def warn_once(self, message: str, *args: object) -> None:
        """Log a problem the next looks will retry, the first time only."""
        if not self._warned:
            LOG.warning(message + "; retrying every %gs", *args, self.interval)
            self._warned = True

    def _run(self) -> None:
        if self.look_first and self.poll():
            return
        while not self._done.wait(self.interval):
            if self.poll():
                return


class EventLog(Poller):
    """This instance's events with their times, written to the bucket within `interval` seconds.

    One JSON object a line: {"time": <epoch seconds>, "event": <name>, ...}. The step and save times
    are the trainer's own (train_callbacks.py prints them); where the trainer cannot print them
    (ms-swift 3) the steps come from its log lines, at the time the agent reads them.
    """

    name = "event-log"
    look_first = False

    def __init__(self, path: Path, interval: float) -> None:
        super().__init__(interval)
        self.path = path
        try:  # a restarted agent on the same instance goes on with the same log
            self._lines = path.read_text().splitlines(keepends=True)
        except OSError:
            self._lines = []
        self._written = len(self._lines)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.clocked = False  # the trainer prints its clock lines

    def add(self, event: str, when: float | None = None, **fields: Any) -> None:
        line = json.dumps({"time": round(time.time() if when is None else when, 3), "event": event, **fields})
        with self._lock:
            self._lines.append(line + "\n")

    def poll(self) -> bool:
        """Write the log if it has new events (also called to flush it before the instance goes)."""
        with self._write_lock:
            with self._lock:
                if self._written == len(self._lines):
                    return False
                text, count = "".join(self._lines), len(self._lines)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Replaced whole (a rename is a copy on the bucket): an instance killed while it writes
                # leaves its last complete log, not a truncated one.
                atomic_write(self.path, text)
            except OSError as exc:
                self.warn_once("cannot write the event log %s (%s)", self.path, exc)
                return False
            self._written = count
        return False

    def stop(self) -> None:
        super().stop()
        self.poll()

    def watch(self, line: str) -> None:
        """Take the trainer's clock lines (and, without them, its step lines) from its output."""
        clock = CLOCK_RE.search(line)
        if clock:
            self.add(clock["event"], when=float(clock["time"]), step=int(clock["step"]))
            self.clocked = True
        elif not self.clocked and (step := STEP_RE.search(line)):
            self.add("step", step=int(step["step"]))


class NoticeWatcher(Poller):
    """Polls the metadata service for a spot reclaim notice (404: no notice)."""

    name = "spot-notice"

    def __init__(self, metadata: Metadata, interval: float, stop: GracefulStop) -> None:
        super().__init__(interval)
        self.metadata = metadata
        self.graceful_stop = stop

    def poll(self) -> bool:
        """Check for a notice; on one, ask for the graceful stop. True when one was seen."""
        try:
            when = self.metadata.get(NOTICE_PATH)
        except (OSError, ValueError) as exc:  # urllib's errors are OSErrors
            self.warn_once("cannot read spot notices at %s (%s)", self.metadata.base_url, exc)
            return False
        if when:
            self.graceful_stop.request(f"spot reclaim notice (the instance terminates at {when})", after_handover=True)
        return bool(when)


class ScaleInWatcher(Poller):
    """Watches for the group's scale-in of this instance (Removing:Wait at a SCALE_IN lifecycle hook).

    On it, a graceful stop; once the agent has handed over, `complete()` lets the removal go on.
    """

    name = "scale-in"

    def __init__(self, instance: Instance | None, interval: float, stop: GracefulStop) -> None:
        super().__init__(interval if instance is not None else 0)
        self.instance, self.graceful_stop = instance, stop
        self.scale_in: ScaleIn | None = None
        self.seen = False

    def poll(self) -> bool:
        """True once there is nothing more to watch: the group holds this instance in Removing:Wait (and
        the stop is asked for), or the instance is in no group."""
        instance = self.instance
        try:
            if self.scale_in is None:
                group_id = scaling_group_of(instance.ecs, instance.region, instance.instance_id)
                if group_id is None:
                    LOG.info("this instance is in no scaling group: no scale-in to watch")
                    return True
                self.scale_in = ScaleIn(instance.ess, instance.region, group_id, instance.instance_id)
            if not self.scale_in.waiting():
                return False
        except (CloudError, OSError, ValueError) as exc:
            self.warn_once("cannot read this instance's scaling state (%s)", exc)
            return False
        self.seen = True
        self.graceful_stop.request(f"scale-in ({SCALE_IN_MARK} in scaling group {self.scale_in.group_id})",
                                   after_handover=True)
        return True

    def complete(self) -> None:
        """After the handover: complete this instance's lifecycle actions, so the group removes it now."""
        if not self.seen or self.scale_in is None:
            return
        try:
            count = self.scale_in.complete()
        except (CloudError, OSError) as exc:
            LOG.warning("completing the lifecycle action failed (%s); the hook's timeout ends the wait", exc)
            return
        LOG.info("%d lifecycle action(s) completed (CONTINUE): the group removes this instance now", count)


# --------------------------------------------------------------------------- the lease

@dataclass
class Instance:
    """The instance the agent runs on, and its clients for the cloud (its RAM role's credentials)."""

    instance_id: str
    region: str
    ecs: RpcClient
    ess: RpcClient
    credentials: StaticCredentials | RoleCredentials


def this_instance(config: Config, metadata: Metadata) -> Instance | None:
    """The instance, where the agent talks to the cloud (a lease is configured); None elsewhere."""
    if not config.lease_bucket:
        return None
    if not config.oss_endpoint:
        raise AgentError("lease_bucket is set but oss_endpoint is not; re-apply the train_service role")
    env_keys = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"), os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    credentials = (StaticCredentials(Keys(env_keys[0], env_keys[1], os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN")))
                   if all(env_keys) else RoleCredentials(metadata))
    try:
        instance_id, region = metadata.get("instance-id"), metadata.get("region-id")
    except OSError as exc:
        raise AgentError(f"the lease needs this instance's id and region, and the metadata service at "
                         f"{metadata.base_url} does not answer ({exc})") from exc
    if not instance_id or not region:
        raise AgentError(f"the metadata service at {metadata.base_url} gives no instance-id or region-id")
    return Instance(instance_id, region,
                    RpcClient(config.api_endpoint.format(product="ecs", region=region), "2014-05-26", credentials),
                    RpcClient(config.api_endpoint.format(product="ess", region=region), "2022-02-22", credentials),
                    credentials)


def no_training_tag(config: Config, instance: Instance) -> str | None:
    """The configured no-training tag when this instance has it (None also when its tags cannot be read:
    then it trains, and the lease keeps it from training beside another)."""
    if not config.no_training_tag:
        return None
    key, _, value = config.no_training_tag.partition("=")
    try:
        tags = instance_tags(instance.ecs, instance.region, instance.instance_id)
    except (CloudError, OSError) as exc:
        LOG.warning("cannot read this instance's tags (%s); it trains", exc)
        return None
    return config.no_training_tag if key in tags and tags[key] == value else None


def make_lease(config: Config, instance: Instance | None) -> Lease | None:
    """The lease of this instance on the output directory; None when none is configured."""
    if instance is None:
        return None
    return Lease(OssClient(config.oss_endpoint, config.lease_bucket, instance.credentials), config.lease_key,
                 instance.instance_id, config.lease_expiry,
                 lambda holder: instance_exists(instance.ecs, instance.region, holder))


def hold_lease(lease: Lease, stop: GracefulStop, poll: float, alive: Callable[[], bool] = lambda: True,
               loaded: threading.Event | None = None, announce_every: float = 10.0) -> bool:
    """Wait until this instance holds the lease, saying who holds it meanwhile; False when stopped first
    (or when `alive` says the trainer that waits with it has died). Once `loaded` is set (the trainer
    waits, loaded), the instance announces itself as the successor, again every `announce_every` s; the
    announcement is taken back when the wait ends without the lease (with it, the caller takes it back
    once the trainer has its go)."""
    said, announced, held = None, None, False
    try:
        while not stop.requested.is_set() and alive():
            try:
                held, why = lease.try_acquire()
            except (CloudError, OSError) as exc:
                held, why = False, f"the lease object cannot be read or written ({exc})"
            if held:
                LOG.info("%s (%s): %s", LEASE_MARK, lease.holder, why)
                return True
            holder_said = HEARTBEAT_AGE.sub("", why)  # once per holder, not at each tick of its heartbeat's age
            if holder_said != said:
                LOG.info("%s: %s", LEASE_WAIT_MARK, why)
                said = holder_said
            if loaded is not None and loaded.is_set() and (
                    announced is None or time.monotonic() - announced >= announce_every):
                try:
                    lease.announce()
                    if announced is None:
                        LOG.info("loaded: told the lease holder that this instance waits to take over")
                    announced = time.monotonic()
                except (CloudError, OSError) as exc:
                    LOG.warning("cannot announce this instance as the successor (%s); retrying", exc)
            stop.requested.wait(HANDOVER_POLL if announced is not None else poll)
        return False
    finally:
        if announced is not None and not held:
            with contextlib.suppress(CloudError, OSError):
                lease.withdraw()


def give_back(lease: Lease | None) -> None:
    """Hand the lease over (after a save that the next trainer resumes from, or at the end)."""
    if lease is None:
        return
    try:
        lease.release()
    except (CloudError, OSError) as exc:
        LOG.warning("giving the training lease back failed (%s); it expires in %gs", exc, lease.expiry)
        return
    LOG.info("training lease given back")


class LeaseKeeper(Poller):
    """Renews the lease while swift trains; stops swift at once when the lease is gone."""

    name = "lease"
    look_first = False  # just acquired

    def __init__(self, lease: Lease, interval: float, stop: GracefulStop) -> None:
        super().__init__(interval)
        self.lease, self.graceful_stop = lease, stop
        self.lost = False
        self._renewed = time.time()

    def poll(self) -> bool:
        """Renew; True (and the trainer stopped) once the lease is lost."""
        try:
            if self.lease.renew():
                self._renewed = time.time()
                return False
            reason = f"lost the training lease ({self.lease.holder_now() or 'nobody'} holds it now)"
        except (CloudError, OSError) as exc:
            if time.time() - self._renewed < self.lease.expiry / 2:
                LOG.warning("renewing the training lease failed (%s); retrying", exc)
                return False
            reason = f"the training lease could not be renewed for {time.time() - self._renewed:.0f}s ({exc})"
        self.lost = True
        self.graceful_stop.abort(reason)
        return True


# --------------------------------------------------------------------------- swift

def boot_times(output_dir: Path) -> dict[str, float]:
    """When this machine's systemd started (its boot) and when the mount that holds `output_dir` became
    active, in epoch seconds, from systemd's own monotonic timestamps: the first milestones of a resume
    (chaos.yml's breakdown). {} where systemd does not run the machine (a host, a test)."""
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return {}
    mount = output_dir
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent

    def monotonic(*args: str) -> float | None:
        try:
            shown = subprocess.run(["systemctl", "show", "--value", *args], capture_output=True, text=True,
                                   timeout=10, check=False).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return None
        return int(shown) / 1e6 if shown.isdigit() and int(shown) > 0 else None

    times: dict[str, float] = {}
    offset = time.time() - time.monotonic()
    if (booted := monotonic("-p", "UserspaceTimestampMonotonic")) is not None:
        times["booted"] = round(booted + offset, 3)
    if mount != mount.parent and (mounted := monotonic("-p", "ActiveEnterTimestampMonotonic", "--", str(mount))):
        times["mounted"] = round(mounted + offset, 3)
    return times


def swift_major(config: Config) -> int:
    version = config.swift_version
    if version == "auto":
        probe = subprocess.run(
            [config.python, "-c", "import importlib.metadata as m; print(m.version('ms-swift'))"],
            capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            raise AgentError(f"ms-swift is not installed for {config.python} ({probe.stderr.strip()[-300:]}); "
                             "apply the python_env role")
        version = probe.stdout.strip()
    try:
        major = int(version.split(".")[0])
    except ValueError as exc:
        raise AgentError(f"cannot read the ms-swift version {version!r}") from exc
    if major < 3:
        raise AgentError(f"ms-swift {version} is too old: 3.x or 4.x is supported")
    LOG.info("ms-swift %s", version)
    return min(major, 4)


def sft_launcher(config: Config) -> list[str]:
    """How `swift sft` is started: the trainer's own script (swift/cli/sft.py) with the training python,
    which is what the `swift` launcher runs, without the launcher's start-up (seconds on a busy instance:
    it imports ms-swift only to start a second python). The launcher itself where it does more (torchrun,
    with NPROC_PER_NODE or NNODES set) or where `swift` is not the training python's."""
    default = [config.swift, "sft"]
    environment = {**os.environ, **config.env}
    swift = shutil.which(config.swift)
    if any(name in environment for name in TORCHRUN_ENV) or swift is None or \
            Path(swift).parent != Path(config.python).parent:
        return default
    probe = subprocess.run(
        [config.python, "-c", "import importlib.util as u; print(u.find_spec('swift').submodule_search_locations[0])"],
        capture_output=True, text=True, check=False)
    script = Path(probe.stdout.strip()) / "cli" / "sft.py"
    if probe.returncode != 0 or not script.is_file():
        return default
    return [config.python, str(script)]


def has_cuda_gpu() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    return Path("/proc/driver/nvidia/gpus").is_dir() and any(Path("/proc/driver/nvidia/gpus").iterdir())


def format_value(value: Any) -> list[str]:
    if isinstance(value, bool):
        return [str(value)]
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [str(value)]


# The files `datasets` loads from a dataset directory, by suffix, and the names it reads as another split than
# train (a directory holding only such a file gives no train split; the file itself would).
DATA_FILE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".arrow", ".txt")
OTHER_SPLIT_NAMES = re.compile(r"test|valid|dev|eval", re.IGNORECASE)


def dataset_file(entry: str) -> str:
    """A `--dataset` entry (`path[#N]`) that names a local directory holding one data file, as that file.

    `datasets` loads a directory by globbing it for a dozen file patterns, each a walk of the directory: on
    the bucket's s3fs mount each walk is a round of OSS requests, 2-4 s per dataset at every start, against
    0.1 s for the file itself (the same rows in the same order). Any other entry is left as it is: a
    hub dataset id, a file, or a directory with several data files, or data in subdirectories."""
    path, sep, rest = entry.partition("#")
    if not path.startswith("/"):
        return entry
    try:
        found = [Path(root) / name for root, _, names in os.walk(path) for name in names
                 if name.lower().endswith(DATA_FILE_SUFFIXES) and not name.startswith(".")]
    except OSError:
        return entry
    if len(found) != 1 or found[0].parent != Path(path) or OTHER_SPLIT_NAMES.search(found[0].stem):
        return entry
    return f"{found[0]}{sep}{rest}"


def swift_command(config: Config, major: int, resume_from: Path | None, gpu: bool, warm: bool = False,
                  launcher: list[str] | None = None) -> list[str]:
    """The `swift sft` command line, started by `launcher` (`swift sft`, or sft_launcher's). ms-swift 4 gets the
    agent's plugin (CALLBACKS_PLUGIN): the trainer's clock, and with `warm` the callback that waits, loaded, for
    the agent's go."""
    arguments = dict(config.arguments)
    if not gpu and config.cpu_torch_dtype and arguments.get("torch_dtype") not in (None, config.cpu_torch_dtype):
        LOG.info("no CUDA GPU: torch_dtype %s instead of %s", config.cpu_torch_dtype, arguments["torch_dtype"])
        arguments["torch_dtype"] = config.cpu_torch_dtype
    arguments["output_dir"] = str(config.output_dir)
    for name in ("dataset", "val_dataset"):
        if isinstance(arguments.get(name), (list, str)):
            entries = [arguments[name]] if isinstance(arguments[name], str) else arguments[name]
            arguments[name] = [dataset_file(entry) for entry in entries]
    # ms-swift's trainer compares the model directory with its ModelScope hub repository at every start
    # (check_model, on by default): an instance reaches no hub (on a real account it has no public IP),
    # so that is 7 s of retries (1 + 2 + 4 s) before the first step of every resume, for nothing.
    arguments.setdefault("check_model", False)
    if major >= 4:
        # graceful_exit saves and stops at the end of a step when the agent asks (GracefulStop).
        callbacks = arguments.get("callbacks") or []
        callbacks = [callbacks] if isinstance(callbacks, str) else list(callbacks)
        wanted = ["graceful_exit", "train_agent_clock", "train_agent_stop",
                  *(["train_agent_handover"] if warm else [])]
        arguments["callbacks"] = callbacks + [name for name in wanted if name not in callbacks]
        plugins = arguments.get("external_plugins") or []
        plugins = [plugins] if isinstance(plugins, str) else list(plugins)
        arguments["external_plugins"] = [*plugins, str(CALLBACKS_PLUGIN)]
    command = list(launcher or [config.swift, "sft"])
    for name, value in arguments.items():
        if value is None:
            continue
        flag = RENAMED_ARGUMENTS.get(name, {}).get(major, name)
        if flag is None:
            continue
        command += [f"--{flag}", *format_value(value)]
    if resume_from is not None:
        command += ["--resume_from_checkpoint", str(resume_from)]
    return command + list(config.extra_args)


def pump(stream: TextIO, sinks: list[TextIO], watch: Callable[[str], None]) -> None:
    for line in iter(stream.readline, ""):
        for sink in sinks:
            sink.write(line)
            sink.flush()
        watch(line)


class Swift:
    """A running `swift sft`, its output copied to the logs and the journal."""

    def __init__(self, command: list[str], config: Config, out_log: TextIO, err_log: TextIO, stop: GracefulStop,
                 events: EventLog, env: dict[str, str] | None = None) -> None:
        environment = dict(os.environ)
        environment.update({key: str(value) for key, value in config.env.items()})
        environment.update(env or {})
        environment.setdefault("PYTHONUNBUFFERED", "1")
        LOG.info("running: %s", " ".join(command))
        self.stop, self.events = stop, events
        self.loaded = threading.Event()  # a warm trainer has loaded and waits for the go
        stop.clear()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=environment, errors="replace")
        events.add("swift", pid=self.process.pid)
        stop.process = self.process
        if stop.requested.is_set():  # a stop that came while swift was being started
            stop.signal_trainer()
        self._pumps = [threading.Thread(target=pump, args=(self.process.stdout, [sys.stdout, out_log], self.watch),
                                        daemon=True),
                       threading.Thread(target=pump, args=(self.process.stderr, [sys.stderr, err_log], self.watch),
                                        daemon=True)]
        for thread in self._pumps:
            thread.start()

    def watch(self, line: str) -> None:
        if READY_MARK in line:
            self.loaded.set()
            self.events.add("loaded")
        else:
            self.events.watch(line)

    def wait(self) -> int:
        try:
            returncode = self.process.wait()
        finally:
            self.stop.clear()
        for thread in self._pumps:
            thread.join(timeout=10)
        return returncode

    def kill(self) -> int:
        kill_tree(self.process.pid)
        return self.wait()


@contextlib.contextmanager
def stop_requests(config: Config, metadata: Metadata, instance: Instance | None,
                  stop: GracefulStop) -> Iterator[None]:
    """While the agent waits for the lease or trains: SIGTERM, SIGINT, a spot notice and the group's scale-in
    ask for a stop. A scale-in's lifecycle action is completed once the agent is done (it has handed over)."""
    def on_signal(signum: int, _frame: Any) -> None:
        stop.request(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    notices = NoticeWatcher(metadata, config.notice_poll_interval, stop)
    scale_in = ScaleInWatcher(instance, config.scale_in_poll_interval, stop)
    notices.start()
    scale_in.start()
    try:
        yield
    finally:
        notices.stop()
        scale_in.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if scale_in.seen:  # the handover's events on the bucket before the group releases the instance
            stop.events.poll()
        scale_in.complete()


# --------------------------------------------------------------------------- when training ends

# Retries of the calls that stop the bill (throttling, a network blip): 1, 2, 4, 8, 16 s apart.
END_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
# How long a finished agent waits for its group to hold it at the scale-in hook (then it lets it go).
SCALE_IN_WAIT = 60.0
ERROR_TAIL_LINES = 30
ERROR_TAIL_CHARS = 3000


def error_tail(log_dir: Path) -> str:
    """The last lines of train_error.log (what swift and the agent said went wrong)."""
    try:
        lines = (log_dir / ERROR_LOG).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-ERROR_TAIL_LINES:])[-ERROR_TAIL_CHARS:]


def training_summary(config: Config, instance: Instance, status: str) -> dict[str, Any]:
    """What the end-of-training event says: where the result is, how far it got, how long it took and on
    which instances (from their event logs)."""
    found = checkpoints(config.output_dir)
    progress = trainer_progress(found[0][1]) if found else None
    starts, instances = [], []
    for log in sorted((config.output_dir / EVENTS_DIR).glob("*.jsonl")):
        instances.append(log.stem)
        with contextlib.suppress(OSError, ValueError, IndexError):
            starts.append(float(json.loads(log.read_text().splitlines()[0])["time"]))
    return {
        "status": status,
        "output_dir": str(config.output_dir),
        "bucket": config.lease_bucket,
        "final_checkpoint": str(found[0][1]) if found else None,
        "global_step": progress[0] if progress else 0,
        "max_steps": progress[1] if progress else None,
        "wall_seconds": round(time.time() - min(starts), 1) if starts else None,
        "instances_used": instances,
        "instance": instance.instance_id,
    }


def with_retries(what: str, call: Callable[[], Any]) -> Any:
    """`call()`, retried with backoff on cloud and network errors; the last error when all fail."""
    for delay in (*END_RETRY_DELAYS, None):
        try:
            return call()
        except (CloudError, OSError) as exc:
            if delay is None:
                raise
            LOG.warning("%s failed (%s); retrying in %gs", what, exc, delay)
            time.sleep(delay)


class Ending:
    """What an agent does when training ends: say so, and stop paying for the group's instances.

    The CloudMonitor event (and the webhook) come first, then the group's desired capacity goes to 0,
    then the agent completes its own scale-in lifecycle action so that the group releases it at once.
    Each step is retried; a step that still fails is logged and reported (a failed scale-to-zero is
    itself reported as a failure), never left silent.
    """

    def __init__(self, config: Config, instance: Instance, events: EventLog) -> None:
        self.config, self.instance, self.events = config, instance, events
        self.cms = RpcClient(config.api_endpoint.format(product="cms", region=instance.region), "2019-01-01",
                             instance.credentials)

    def notify(self, summary: dict[str, Any]) -> bool:
        """Report `summary`; whether every configured channel took it."""
        content = json.dumps(summary, sort_keys=True)
        delivered = True
        if self.config.event_name:
            try:
                with_retries("reporting the CloudMonitor event",
                             lambda: put_custom_event(self.cms, self.config.event_name, content))
                LOG.info("reported the CloudMonitor event %s: training %s", self.config.event_name, summary["status"])
            except (CloudError, OSError) as exc:
                LOG.error("cannot report the CloudMonitor event %s (%s): does the instance role allow "
                          "cms:PutCustomEvent?", self.config.event_name, exc)
                delivered = False
        if self.config.notify_webhook:
            text = (f"{self.config.event_name or 'training'}: training {summary['status']} at step "
                    f"{summary['global_step']}/{summary['max_steps'] or '?'} ({summary['final_checkpoint']})")
            try:
                post_webhook(self.config.notify_webhook, {"msgtype": "text", "text": {"content": text},
                                                          "event": self.config.event_name, "result": summary})
                LOG.info("posted the result to the webhook")
            except (CloudError, OSError, ValueError) as exc:  # never fatal: the event is the record
                LOG.warning("the webhook did not take the result (%s)", exc)
                delivered = False
        self.events.add("notified", status=summary["status"], delivered=delivered)
        return delivered

    def stop_paying(self) -> str | None:
        """Set the group to 0 instances and let this one go; None when done, else what went wrong."""
        if not self.config.scale_to_zero:
            return None
        try:
            group_id = with_retries("finding this instance's scaling group",
                                    lambda: scaling_group_of(self.instance.ecs, self.instance.region,
                                                             self.instance.instance_id))
        except (CloudError, OSError) as exc:
            return f"cannot tell this instance's scaling group ({exc})"
        if group_id is None:
            LOG.info("this instance is in no scaling group: nothing to scale in")
            return None
        scale_in = ScaleIn(self.instance.ess, self.instance.region, group_id, self.instance.instance_id)
        try:
            with_retries(f"setting {group_id}'s desired capacity to 0", scale_in.scale_to_zero)
        except (CloudError, OSError) as exc:
            return (f"cannot set the desired capacity of {group_id} to 0 ({exc}); the instance keeps running and "
                    "billing: set it by hand, and check that the instance role allows ess:ModifyScalingGroup "
                    "on the group")
        LOG.info("desired capacity of %s set to 0: the group removes this instance", group_id)
        self.events.add("scaled_to_zero", group=group_id)
        self.events.poll()  # on the bucket before the group releases this instance
        deadline = time.monotonic() + SCALE_IN_WAIT
        while time.monotonic() < deadline:
            try:
                if scale_in.complete():
                    LOG.info("lifecycle action completed: the group releases this instance now")
                    self.events.add("released_self")
                    return None
            except (CloudError, OSError) as exc:
                LOG.warning("cannot complete this instance's lifecycle action yet (%s)", exc)
            time.sleep(0.2)
        LOG.info("no lifecycle action held this instance within %gs; the group removes it", SCALE_IN_WAIT)
        return None

    def complete(self) -> None:
        """Training is complete: report it once (the marker records that it was), then stop paying."""
        marker = self.config.output_dir / COMPLETE_MARKER
        record = json.loads(marker.read_text()) if marker.is_file() else {}
        if not record.get("notified_at"):
            self.notify(training_summary(self.config, self.instance, "complete"))
            record["notified_at"] = utc_now()
            with contextlib.suppress(OSError):
                atomic_write(marker, json.dumps(record, indent=2) + "\n")
        if problem := self.stop_paying():
            LOG.error("%s", problem)
            self.notify({**training_summary(self.config, self.instance, "failed"), "error": problem})

    def give_up(self, error: str) -> None:
        """Training failed in a way a restart does not fix: report it with the error, then stop paying."""
        summary = {**training_summary(self.config, self.instance, "failed"), "error": error,
                   "error_tail": error_tail(self.config.log_dir)}
        self.notify(summary)
        if problem := self.stop_paying():
            LOG.error("%s", problem)


class FailedStarts:
    """The failed starts in a row on this instance, without progress (a newer valid checkpoint) between them."""

    def __init__(self, config: Config) -> None:
        self.path = config.state_dir / "failed_starts.json"

    def add(self, step: int) -> int:
        """Count one more failed start at checkpoint `step`; how many in a row."""
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            record = {}
        count = int(record.get("count", 0)) + 1 if record.get("step") == step else 1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps({"count": count, "step": step}) + "\n")
        return count

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def step_of(checkpoint: Path | None) -> int:
    """The global step a checkpoint-N directory is named after (0 for none)."""
    return int(CHECKPOINT_RE.match(checkpoint.name)[1]) if checkpoint else 0


def conclude(config: Config, instance: Instance | None, events: EventLog, code: int, error: str | None = None) -> int:
    """After a start: on completion, or at the failure limit, report it and stop paying; the exit code.

    Without an instance (a host, tests) there is no group and no event: the code as it was."""
    if instance is None:
        return code
    ending, failures = Ending(config, instance, events), FailedStarts(config)
    if completion(config.output_dir):
        failures.clear()
        ending.complete()
        return 0
    if code == 0:
        failures.clear()
        return 0
    count = failures.add(step_of(newest_valid_checkpoint(config)))
    if count < config.failure_limit:
        LOG.error("start %d of %d in a row failed (exit %d); systemd starts the agent again", count,
                  config.failure_limit, code)
        return code
    message = error or f"swift sft failed {count} times in a row (last exit {code}) without a new checkpoint"
    LOG.error("%s: giving up, reporting it and setting the scaling group to 0 instances", message)
    ending.give_up(message)
    failures.clear()
    return 0


# --------------------------------------------------------------------------- main

def setup_logging(log_dir: Path) -> tuple[TextIO, TextIO]:
    log_dir.mkdir(parents=True, exist_ok=True)
    out_log = (log_dir / TRAIN_LOG).open("a", encoding="utf-8")
    err_log = (log_dir / ERROR_LOG).open("a", encoding="utf-8")
    formatter = logging.Formatter("%(asctime)s train-agent %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout), logging.StreamHandler(out_log)]
    errors = logging.StreamHandler(err_log)
    errors.setLevel(logging.WARNING)
    handlers.append(errors)
    for handler in handlers:
        handler.setFormatter(formatter)
        LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    return out_log, err_log


def already_complete(config: Config, dry_run: bool) -> bool:
    reason = completion(config.output_dir)
    if not reason:
        return False
    LOG.info("training already complete (%s); nothing to do", reason)
    if not dry_run and not (config.output_dir / COMPLETE_MARKER).is_file():
        # The last run was stopped between the end of swift and its marker: record it now.
        write_completion_marker(config.output_dir)
        LOG.info("completion marker written")
    return True


def run(config: Config, out_log: TextIO, err_log: TextIO, dry_run: bool = False) -> int:
    if dry_run:
        if not already_complete(config, dry_run=True):
            print(json.dumps(swift_command(config, swift_major(config), newest_valid_checkpoint(config),
                                           has_cuda_gpu(), launcher=sft_launcher(config))))
        return 0
    metadata = Metadata(config.metadata_url)
    instance = this_instance(config, metadata)
    name = instance.instance_id if instance is not None else socket.gethostname()
    events = EventLog(config.output_dir / EVENTS_DIR / f"{name}.jsonl", config.event_log_interval)
    if instance is not None and (tag := no_training_tag(config, instance)):
        LOG.info("this instance has the tag %s: it does not train", tag)
        return 0
    if already_complete(config, dry_run=False):
        # Nothing to train: make sure nobody pays for it (the event was reported when it completed).
        return conclude(config, instance, events, 0)
    events.add("start", **boot_times(config.output_dir))
    events.start()
    code, error = 1, None
    try:
        code = train_once(config, metadata, instance, events, out_log, err_log)
    except AgentError as exc:
        LOG.error("%s", exc)
        code, error = 2, str(exc)
    try:
        return conclude(config, instance, events, code, error)
    finally:
        events.add("exit", code=code)
        events.stop()


def train_once(config: Config, metadata: Metadata, instance: Instance | None, events: EventLog, out_log: TextIO,
               err_log: TextIO) -> int:
    """One start: hold the lease, run swift until it ends or is stopped; the exit code."""
    if not config.output_dir.parent.is_dir():
        raise AgentError(f"{config.output_dir.parent} does not exist: is the bucket mounted?")
    config.output_dir.mkdir(parents=True, exist_ok=True)
    major = swift_major(config)
    launcher = sft_launcher(config)
    if config.load_with_torch:
        preload_torch()
    lease = make_lease(config, instance)
    stop = GracefulStop(events)
    stop.graceful = major >= 4
    stop.handover_wait = config.handover_wait
    with stop_requests(config, metadata, instance, stop):
        if lease is None:
            return train(config, start_cold(config, major, launcher, out_log, err_log, stop), None, stop)
        if major >= 4:
            swift = start_warm(config, major, launcher, lease, out_log, err_log, stop)
        else:
            held = take_lease(config, lease, stop)
            swift = start_cold(config, major, launcher, out_log, err_log, stop) if held else 0
        return swift if isinstance(swift, int) else train(config, swift, lease, stop)


def take_lease(config: Config, lease: Lease, stop: GracefulStop, alive: Callable[[], bool] = lambda: True,
               loaded: threading.Event | None = None) -> bool:
    """Hold the lease, unless a stop comes first or training turns out complete (then give it back)."""
    if not hold_lease(lease, stop, LEASE_POLL, alive, loaded, announce_every=config.lease_heartbeat):
        LOG.info("%s on %s while waiting for the training lease", STOPPED_MARK, stop.reason or "the trainer's exit")
        return False
    stop.events.add("lease")
    # Checked again once the lease is held: the instance that handed it over may have finished.
    if already_complete(config, dry_run=False):
        give_back(lease)
        return False
    return True


def resume_point(config: Config, events: EventLog) -> Path | None:
    """The checkpoint to resume from (None: a new training), saying which in train.log."""
    began = time.monotonic()
    resume_from = newest_valid_checkpoint(config)
    if resume_from is None:
        LOG.info("%s: starting a new training", FRESH_MARK)
    events.add("resume", step=step_of(resume_from), validation_seconds=round(time.monotonic() - began, 3))
    return resume_from


def start_cold(config: Config, major: int, launcher: list[str], out_log: TextIO, err_log: TextIO,
               stop: GracefulStop) -> Swift:
    """swift sft from the newest valid checkpoint (chosen now: the agent holds the lease, if there is one)."""
    command = swift_command(config, major, resume_point(config, stop.events), has_cuda_gpu(), launcher=launcher)
    return Swift(command, config, out_log, err_log, stop, stop.events)


def start_warm(config: Config, major: int, launcher: list[str], lease: Lease, out_log: TextIO, err_log: TextIO,
               stop: GracefulStop) -> Swift | int:
    """Start swift at once and let it load while the agent waits for the lease; then tell it where to resume.

    The checkpoint is chosen once the lease is held, when the instance that handed it over has saved.
    Without the lease: the agent's exit code (swift's own when it died while loading).
    """
    go_file = Path(tempfile.mkdtemp(prefix="train-agent-")) / "go.json"
    command = swift_command(config, major, None, has_cuda_gpu(), warm=True, launcher=launcher)
    swift = Swift(command, config, out_log, err_log, stop, stop.events, env={GO_FILE_ENV: str(go_file)})
    if not take_lease(config, lease, stop, alive=lambda: swift.process.poll() is None, loaded=swift.loaded):
        died = swift.process.poll()
        swift.kill()
        if died:
            LOG.error("swift sft exited with %d while loading; the next start tries again", died)
            return died if died > 0 else 1
        return 0
    resume_from = resume_point(config, stop.events)
    atomic_write(go_file, json.dumps({"resume_from": str(resume_from) if resume_from else None}) + "\n")
    try:
        lease.withdraw()  # the announcement as a successor, if it made one
    except (CloudError, OSError) as exc:
        LOG.warning("cannot take back this instance's announcement as the successor (%s); it expires", exc)
    return swift


def train(config: Config, swift: Swift, lease: Lease | None, stop: GracefulStop) -> int:
    """Keep the lease and write manifests while swift trains; then record how it ended.

    While it trains with the lease, a notice or a scale-in waits for a successor (GracefulStop)."""
    keeper = LeaseKeeper(lease, config.lease_heartbeat, stop) if lease is not None else None
    manifests = ManifestWriter(config.output_dir, config.manifest_interval)
    manifests.start()
    if keeper is not None:
        stop.successor = lease.successor
        keeper.start()
    try:
        returncode = swift.wait()
    finally:
        stop.successor = None
        if keeper is not None:
            keeper.stop()
        manifests.stop(newest_only=stop.reason is not None)
    if keeper is not None and keeper.lost:
        LOG.error("%s; the instance that holds the training lease trains now", stop.reason)
        return 0
    reason = completion(config.output_dir) if returncode == 0 else None
    if reason:
        write_completion_marker(config.output_dir)
        LOG.info("training complete (%s)", reason)
        stop.events.add("complete")
        code = 0
    elif stop.reason is not None:
        code = stopped(config, stop.reason, returncode)
    elif returncode != 0:
        # The lease stays: this instance restarts the training (or its heartbeat expires).
        LOG.error("swift sft exited with %d; the next start resumes from the newest valid checkpoint", returncode)
        return returncode
    else:
        LOG.warning("swift sft exited 0 but training has not reached its last step (stopped from outside?); "
                    "the next start resumes")
        code = 0
    give_back(lease)
    if lease is not None:
        stop.events.add("handed_over")
    return code


def stopped(config: Config, reason: str, returncode: int) -> int:
    """After a graceful stop: say which checkpoint the next trainer resumes from, and that it is valid."""
    found = checkpoints(config.output_dir)
    if not found:
        LOG.warning("%s on %s before the first checkpoint; the next start begins anew", STOPPED_MARK, reason)
        return 0
    step, directory = found[0]
    problem = check_checkpoint(directory, step, config)
    if problem is not None or returncode != 0:
        LOG.error("stopping on %s: swift exited with %d and %s is not valid (%s); the next start resumes from the "
                  "newest valid checkpoint", reason, returncode, directory, problem or "its save was cut short")
        return returncode if returncode > 0 else 1
    progress = trainer_progress(directory)
    LOG.info("%s on %s: %s is valid (global step %d of %s); training is not complete", STOPPED_MARK, reason,
             directory, step, progress[1] if progress else "?")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run or resume the fine-tuning from the newest valid checkpoint.")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--dry-run", action="store_true", help="print the swift command instead of running it")
    args = parser.parse_args(argv)
    try:
        config = Config.load(args.config)
        if args.dry_run:
            logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="train-agent %(levelname)s %(message)s")
            out_log, err_log = sys.stdout, sys.stderr
        else:
            out_log, err_log = setup_logging(config.log_dir)
        if shutil.which(config.swift) is None:
            raise AgentError(f"{config.swift} not found; apply the python_env role")
        return run(config, out_log, err_log, dry_run=args.dry_run)
    except AgentError as exc:
        if LOG.handlers:
            LOG.error("%s", exc)
        else:
            print(f"train-agent: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
