"""`swift sft`: its command line (the installed ms-swift's argument names, the agent's plugin, the datasets as
files) and the running trainer, its output copied to the logs, the journal and the event log."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .config import AgentError, Config
from .events import EventLog
from .logs import LOG
from .protocol import READY_MARK, Event
from .stopping import TrainerStop, kill_tree

# The directory that holds this package: on the trainer's PYTHONPATH, so that the plugin, which ms-swift
# loads from its file, imports the protocol as `train_agent.protocol`.
AGENT_HOME = Path(__file__).resolve().parents[1]
# The agent's ms-swift 4 plugin: the trainer's clock, and a trainer that loads while the agent waits for the
# lease. In a directory of its own: ms-swift puts a plugin's directory first on the trainer's sys.path.
CALLBACKS_PLUGIN = Path(__file__).resolve().parent / "plugin" / "callbacks.py"
# Set, they make the `swift` launcher start the trainer with torchrun (swift/cli/main.py).
TORCHRUN_ENV = ("NPROC_PER_NODE", "NNODES")
# Arguments whose name depends on the ms-swift major version: {canonical: {major: name or None}}.
RENAMED_ARGUMENTS = {
    "tuner_type": {3: "train_type", 4: "tuner_type"},
    "overwrite_output_dir": {3: "overwrite_output_dir", 4: None},
}


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
# Datasets ms-swift handles by the last name of their path (swift/dataset/dataset_syntax.py,
# _get_matched_dataset_meta): a local self-cognition directory gets the preprocessor that fills {{NAME}} and
# {{AUTHOR}} from --model_name and --model_author; the file inside it would be plain data, with the
# placeholders left in.
SWIFT_NAMED_DATASETS = frozenset({"self-cognition"})


def dataset_file(entry: str) -> str:
    """A `--dataset` entry (`path[#N]`) that names a local directory holding one data file, as that file.

    `datasets` loads a directory by globbing it for a dozen file patterns, each a walk of the directory: on
    the bucket's s3fs mount each walk is a round of OSS requests, 2-4 s per dataset at every start, against
    0.1 s for the file itself (the same rows in the same order). Any other entry is left as it is: a
    hub dataset id, a file, a directory with several data files, or data in subdirectories, and a directory
    that ms-swift handles by its name (SWIFT_NAMED_DATASETS)."""
    path, sep, rest = entry.partition("#")
    if not path.startswith("/") or Path(path).name in SWIFT_NAMED_DATASETS:
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
        # graceful_exit saves and stops at the end of a step when the agent asks (TrainerStop).
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


def trainer_environment(config: Config, env: dict[str, str] | None = None) -> dict[str, str]:
    """The trainer's environment: the agent's with the configured `env` and `env` over it, and the agent's home
    on PYTHONPATH (after any there: it holds this package alone)."""
    environment = dict(os.environ)
    environment.update({key: str(value) for key, value in config.env.items()})
    environment.update(env or {})
    environment.setdefault("PYTHONUNBUFFERED", "1")
    paths = [path for path in environment.get("PYTHONPATH", "").split(os.pathsep) if path]
    environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([*paths, str(AGENT_HOME)]))
    return environment


class Swift:
    """A running `swift sft`, its output copied to the logs and the journal."""

    def __init__(self, command: list[str], config: Config, out_log: TextIO, err_log: TextIO, trainer: TrainerStop,
                 events: EventLog, env: dict[str, str] | None = None) -> None:
        environment = trainer_environment(config, env)
        LOG.info("running: %s", " ".join(command))
        self.trainer, self.events = trainer, events
        self.loaded = threading.Event()  # a warm trainer has loaded and waits for the go
        trainer.clear()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=environment, errors="replace")
        events.add(Event.SWIFT, pid=self.process.pid)
        trainer.attach(self.process)
        self._pumps = [threading.Thread(target=pump, args=(self.process.stdout, [sys.stdout, out_log], self.watch),
                                        daemon=True),
                       threading.Thread(target=pump, args=(self.process.stderr, [sys.stderr, err_log], self.watch),
                                        daemon=True)]
        for thread in self._pumps:
            thread.start()

    def watch(self, line: str) -> None:
        if READY_MARK in line:
            self.loaded.set()
            self.events.add(Event.LOADED)
        else:
            self.events.watch(line)

    def wait(self) -> int:
        try:
            returncode = self.process.wait()
        finally:
            self.trainer.clear()
        for thread in self._pumps:
            thread.join(timeout=10)
        return returncode

    def kill(self) -> int:
        kill_tree(self.process.pid)
        return self.wait()
