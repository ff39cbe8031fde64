"""Checkpoints: the newest valid one to resume from (by global step; each checked for a complete save, whole
files and the agent's manifest), and the manifests, written while the trainer saves."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import struct
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import Config
from .logs import LOG
from .protocol import MANIFEST_NAME, RESUME_MARK, TRAINER_STATE

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# What a resumable checkpoint needs besides its weights (Hugging Face Trainer's file names).
REQUIRED_STATE_FILES = ("optimizer.pt", "scheduler.pt")
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin")
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def utc_now() -> str:
    """Now, as the completion marker and the manifests record their times (ISO 8601, UTC, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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


def step_of(checkpoint: Path | None) -> int:
    """The global step a checkpoint-N directory is named after (0 for none)."""
    return int(CHECKPOINT_RE.match(checkpoint.name)[1]) if checkpoint else 0


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

    def __init__(self, output_dir: Path, interval: float,
                 written: Callable[[float], None] = lambda _seconds: None) -> None:
        self.output_dir = output_dir
        self.interval = interval
        self.written = written  # told how long each manifest took (the pace of a stop)
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
            began = time.monotonic()
            record = {"global_step": step, "written_at": utc_now(),
                      "files": manifest_entries(directory)}
            try:
                atomic_write(directory / MANIFEST_NAME, json.dumps(record, indent=1) + "\n")
            except FileNotFoundError:
                continue  # rotated away by save_total_limit meanwhile
            self.written(time.monotonic() - began)
            LOG.info("manifest written for %s", directory.name)
