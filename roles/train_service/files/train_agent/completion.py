"""Whether training is complete: the agent's completion marker, or ms-swift's end-of-training line in
logging.jsonl whose checkpoint reached its last step; and the marker, written once it is."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .checkpoints import atomic_write, utc_now
from .protocol import COMPLETE_MARKER, TRAINER_STATE


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


def write_completion_marker(output_dir: Path) -> None:
    summary = final_summary(output_dir) or {}
    record = {key: summary.get(key) for key in ("last_model_checkpoint", "best_model_checkpoint", "global_step")}
    record["completed_at"] = utc_now()
    atomic_write(output_dir / COMPLETE_MARKER, json.dumps(record, indent=2) + "\n")
