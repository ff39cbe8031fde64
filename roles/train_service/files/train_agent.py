#!/usr/bin/env python3
"""The training agent: the recipe's /root/train.sh made robust.

Started at boot by train.service, after the bucket is mounted:

1. Training complete (the last line of logging.jsonl names `last_model_checkpoint`, or the agent's
   completion marker is there): exit 0 and do nothing else.
2. Otherwise pick the newest *valid* checkpoint by global step (not by mtime). A checkpoint is valid
   when trainer_state.json parses and its global_step matches the directory, the weights, optimizer
   and scheduler files are complete (format checks; loaded with torch/safetensors when importable)
   and the manifest this agent writes after each save (sizes and sha256) matches. Invalid ones are
   skipped and logged.
3. Run `swift sft` with the configured arguments, `--resume_from_checkpoint` when there is a
   checkpoint, with the argument names of the installed ms-swift (3.x `--train_type`, 4.x
   `--tuner_type`). While it runs, every finished checkpoint gets its manifest.
4. Log to /root/train-service-log/train.log and train_error.log (as the recipe does) and to
   stdout/stderr, which systemd sends to the journal.

Standard library only: it runs with the system python3 or the training environment's python.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

LOG = logging.getLogger("train-agent")

DEFAULT_CONFIG = Path("/etc/train-agent/config.json")
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
MANIFEST_NAME = "train_agent_manifest.json"
COMPLETE_MARKER = "train_agent_complete.json"
LOG_DIR = Path("/root/train-service-log")
TRAIN_LOG = "train.log"
# The lines of train.log the playbooks read (playbooks/filter_plugins/training.py imports these): how a
# start chose its checkpoint, and ms-swift's step lines ({'loss': ..., 'global_step/max_steps': '7/150'}).
RESUME_MARK = "newest valid checkpoint"
RESUME_RE = re.compile(RESUME_MARK + r": (?P<path>\S+) \(global step (?P<step>\d+)\)")
FRESH_MARK = "no valid checkpoint"
STEP_KEY = "global_step/max_steps"
STEP_RE = re.compile(r"""['"]""" + STEP_KEY + r"""['"]: ['"](?P<step>\d+)/(?P<max>\d+)['"]""")
TRAINER_STATE = "trainer_state.json"
# What a resumable checkpoint needs besides its weights (Hugging Face Trainer's file names).
REQUIRED_STATE_FILES = ("optimizer.pt", "scheduler.pt")
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin")
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
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
        if "log_dir" in raw:
            raw["log_dir"] = Path(raw["log_dir"])
        return cls(**raw)


# --------------------------------------------------------------------------- completion

def last_line(path: Path) -> str:
    """The last non-empty line of a text file ('' when there is none)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            lines = [line for line in handle.read().splitlines() if line.strip()]
    except FileNotFoundError:
        return ""
    return lines[-1].decode("utf-8", "replace") if lines else ""


def completion(output_dir: Path) -> str | None:
    """Why training counts as complete, or None when it does not."""
    marker = output_dir / COMPLETE_MARKER
    if marker.is_file():
        return f"completion marker {marker}"
    line = last_line(output_dir / "logging.jsonl")
    if "last_model_checkpoint" in line:
        return f"{output_dir / 'logging.jsonl'} names last_model_checkpoint"
    return None


def write_completion_marker(output_dir: Path) -> None:
    line = last_line(output_dir / "logging.jsonl")
    try:
        summary = json.loads(line)
    except json.JSONDecodeError:
        summary = {}
    record = {key: summary.get(key) for key in ("last_model_checkpoint", "best_model_checkpoint", "global_step")}
    record["completed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
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

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.scan(final=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.scan()
            except OSError as exc:
                LOG.warning("manifest scan: %s", exc)

    def scan(self, final: bool = False) -> None:
        for step, directory in checkpoints(self.output_dir):
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
            record = {"global_step": step, "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "files": manifest_entries(directory)}
            try:
                atomic_write(directory / MANIFEST_NAME, json.dumps(record, indent=1) + "\n")
            except FileNotFoundError:
                continue  # rotated away by save_total_limit meanwhile
            LOG.info("manifest written for %s", directory.name)


# --------------------------------------------------------------------------- swift

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


def swift_command(config: Config, major: int, resume_from: Path | None, gpu: bool) -> list[str]:
    arguments = dict(config.arguments)
    if not gpu and config.cpu_torch_dtype and arguments.get("torch_dtype") not in (None, config.cpu_torch_dtype):
        LOG.info("no CUDA GPU: torch_dtype %s instead of %s", config.cpu_torch_dtype, arguments["torch_dtype"])
        arguments["torch_dtype"] = config.cpu_torch_dtype
    arguments["output_dir"] = str(config.output_dir)
    command = [config.swift, "sft"]
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


def pump(stream: TextIO, sinks: list[TextIO]) -> None:
    for line in iter(stream.readline, ""):
        for sink in sinks:
            sink.write(line)
            sink.flush()


def run_swift(command: list[str], config: Config, out_log: TextIO, err_log: TextIO) -> int:
    env = dict(os.environ)
    env.update({key: str(value) for key, value in config.env.items()})
    env.setdefault("PYTHONUNBUFFERED", "1")
    LOG.info("running: %s", " ".join(command))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               errors="replace")

    def forward(signum: int, _frame: Any) -> None:
        # ms-swift's graceful_exit callback saves a checkpoint at the end of the step on SIGTERM.
        LOG.info("signal %d: passing it to swift", signum)
        process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    pumps = [threading.Thread(target=pump, args=(process.stdout, [sys.stdout, out_log]), daemon=True),
             threading.Thread(target=pump, args=(process.stderr, [sys.stderr, err_log]), daemon=True)]
    for thread in pumps:
        thread.start()
    try:
        returncode = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for thread in pumps:
        thread.join(timeout=10)
    return returncode


# --------------------------------------------------------------------------- main

def setup_logging(log_dir: Path) -> tuple[TextIO, TextIO]:
    log_dir.mkdir(parents=True, exist_ok=True)
    out_log = (log_dir / TRAIN_LOG).open("a", encoding="utf-8")
    err_log = (log_dir / "train_error.log").open("a", encoding="utf-8")
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


def run(config: Config, out_log: TextIO, err_log: TextIO, dry_run: bool = False) -> int:
    reason = completion(config.output_dir)
    if reason:
        LOG.info("training already complete (%s); nothing to do", reason)
        if not dry_run and not (config.output_dir / COMPLETE_MARKER).is_file():
            # The last run was stopped between the end of swift and its marker: record it now.
            write_completion_marker(config.output_dir)
            LOG.info("completion marker written")
        return 0
    if not config.output_dir.parent.is_dir():
        raise AgentError(f"{config.output_dir.parent} does not exist: is the bucket mounted?")
    config.output_dir.mkdir(parents=True, exist_ok=True)
    resume_from = newest_valid_checkpoint(config)
    if resume_from is None:
        LOG.info("%s: starting a new training", FRESH_MARK)
    major = swift_major(config)
    command = swift_command(config, major, resume_from, has_cuda_gpu())
    if dry_run:
        print(json.dumps(command))
        return 0
    manifests = ManifestWriter(config.output_dir, config.manifest_interval)
    manifests.start()
    try:
        returncode = run_swift(command, config, out_log, err_log)
    finally:
        manifests.stop()
    if returncode != 0:
        LOG.error("swift sft exited with %d; the next start resumes from the newest valid checkpoint", returncode)
        return returncode
    if "last_model_checkpoint" in last_line(config.output_dir / "logging.jsonl"):
        write_completion_marker(config.output_dir)
        LOG.info("training complete")
    else:
        LOG.warning("swift sft exited 0 but logging.jsonl does not record the end of training "
                    "(stopped early on a signal?); the next start resumes")
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
