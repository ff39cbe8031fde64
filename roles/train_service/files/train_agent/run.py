"""One start of the agent, from the command line: training already complete, or hold the lease, run swift
until it ends or is stopped, record how it ended, and conclude (ending.conclude); `main` is train.sh's."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from .checkpoints import (
    ManifestWriter,
    atomic_write,
    check_checkpoint,
    checkpoints,
    newest_valid_checkpoint,
    preload_torch,
    step_of,
)
from .cloud import CloudError, Metadata
from .completion import completion, trainer_progress, write_completion_marker
from .config import DEFAULT_CONFIG, AgentError, Config
from .ending import conclude
from .events import EventLog, boot_times
from .instance import Instance, no_training_tag, this_instance
from .lease import LEASE_POLL, Lease, LeaseKeeper, give_back, hold_lease, make_lease
from .logs import LOG, setup_logging
from .protocol import (
    COMPLETE_MARKER,
    EVENTS_DIR,
    FRESH_MARK,
    GO_FILE_ENV,
    LEASE_WAIT_MARK,
    RESUME_MARK,
    STOPPED_MARK,
    Event,
)
from .stopping import GracefulStop, Handover, TrainerStop, stop_requests
from .swift import Swift, has_cuda_gpu, sft_launcher, swift_command, swift_major


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
    events.add(Event.START, **boot_times(config.output_dir))
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
        events.add(Event.EXIT, code=code)
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
    stop = GracefulStop()
    handover = Handover(stop, TrainerStop(stop, graceful=major >= 4), events, config.handover_wait)
    with stop_requests(config, metadata, instance, handover):
        if lease is None:
            return train(config, start_cold(config, major, launcher, out_log, err_log, handover), None, handover)
        if major >= 4:
            swift = start_warm(config, major, launcher, lease, out_log, err_log, handover)
        else:
            held = take_lease(config, lease, handover)
            swift = start_cold(config, major, launcher, out_log, err_log, handover) if held else 0
        return swift if isinstance(swift, int) else train(config, swift, lease, handover)


def take_lease(config: Config, lease: Lease, handover: Handover, alive: Callable[[], bool] = lambda: True,
               loaded: threading.Event | None = None) -> bool:
    """Hold the lease, unless a stop comes first or training turns out complete (then give it back)."""
    stop = handover.stop
    if not hold_lease(lease, stop, LEASE_POLL, alive, loaded, announce_every=config.lease_heartbeat):
        LOG.info("%s on %s while %s", STOPPED_MARK, stop.reason or "the trainer's exit", LEASE_WAIT_MARK)
        return False
    handover.events.add(Event.LEASE)
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
    events.add(Event.RESUME, step=step_of(resume_from), validation_seconds=round(time.monotonic() - began, 3))
    return resume_from


def start_cold(config: Config, major: int, launcher: list[str], out_log: TextIO, err_log: TextIO,
               handover: Handover) -> Swift:
    """swift sft from the newest valid checkpoint (chosen now: the agent holds the lease, if there is one)."""
    command = swift_command(config, major, resume_point(config, handover.events), has_cuda_gpu(), launcher=launcher)
    return Swift(command, config, out_log, err_log, handover.trainer, handover.events)


def start_warm(config: Config, major: int, launcher: list[str], lease: Lease, out_log: TextIO, err_log: TextIO,
               handover: Handover) -> Swift | int:
    """Start swift at once and let it load while the agent waits for the lease; then tell it where to resume.

    The checkpoint is chosen once the lease is held, when the instance that handed it over has saved.
    Without the lease: the agent's exit code (swift's own when it died while loading).
    """
    go_file = Path(tempfile.mkdtemp(prefix="train-agent-")) / "go.json"
    command = swift_command(config, major, None, has_cuda_gpu(), warm=True, launcher=launcher)
    swift = Swift(command, config, out_log, err_log, handover.trainer, handover.events,
                  env={GO_FILE_ENV: str(go_file)})
    if not take_lease(config, lease, handover, alive=lambda: swift.process.poll() is None, loaded=swift.loaded):
        died = swift.process.poll()
        swift.kill()
        if died:
            LOG.error("swift sft exited with %d while loading; the next start tries again", died)
            return died if died > 0 else 1
        return 0
    resume_from = resume_point(config, handover.events)
    atomic_write(go_file, json.dumps({"resume_from": str(resume_from) if resume_from else None}) + "\n")
    try:
        lease.withdraw()  # the announcement as a successor, if it made one
    except (CloudError, OSError) as exc:
        LOG.warning("cannot take back this instance's announcement as the successor (%s); it expires", exc)
    return swift


def train(config: Config, swift: Swift, lease: Lease | None, handover: Handover) -> int:
    """Keep the lease and write manifests while swift trains; then record how it ended.

    While it trains with the lease, a notice or a scale-in waits for a successor (Handover)."""
    stop = handover.stop
    keeper = LeaseKeeper(lease, config.lease_heartbeat, handover) if lease is not None else None
    manifests = ManifestWriter(config.output_dir, config.manifest_interval, handover.events.pace.manifest_written)
    manifests.start()
    if keeper is not None:
        handover.successor = lease.successor
        keeper.start()
    try:
        returncode = swift.wait()
    finally:
        handover.successor = None
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
        handover.events.add(Event.COMPLETE)
        code = 0
    elif stop.reason is not None:
        code = stopped(config, stop.reason, returncode)
    elif returncode != 0:
        # The lease stays: this instance restarts the training (or its heartbeat expires).
        LOG.error("swift sft exited with %d; the next start resumes from the %s", returncode, RESUME_MARK)
        return returncode
    else:
        LOG.warning("swift sft exited 0 but training has not reached its last step (stopped from outside?); "
                    "the next start resumes")
        code = 0
    give_back(lease)
    if lease is not None:
        handover.events.add(Event.HANDED_OVER)
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
                  "%s", reason, returncode, directory, problem or "its save was cut short", RESUME_MARK)
        return returncode if returncode > 0 else 1
    progress = trainer_progress(directory)
    LOG.info("%s on %s: %s is valid (global step %d of %s); training is not complete", STOPPED_MARK, reason,
             directory, step, progress[1] if progress else "?")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="train_agent",
                                     description=f"Run or resume the fine-tuning from the {RESUME_MARK}.")
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
