"""The training agent's fixtures: the training venv, the tiny workload and real checkpoints.

The agent is the package roles/train_service/files/train_agent: the tests import its modules
(`from train_agent.checkpoints import ...`, with roles/train_service/files on sys.path) and run it as
train.sh does, `python -m train_agent --config ...` (agent_command, with agent_env's PYTHONPATH).
The venv (.cache/train-venv) holds the pinned training stack of roles/python_env; it is made the
first time (a few minutes: ~2 GB) and reused while the requirements file is unchanged. The
checkpoints come from a real `swift sft` run of the tiny model, driven by the agent itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles" / "train_service" / "files"
REQUIREMENTS = ROOT / "roles" / "python_env" / "files" / "requirements-train.txt"
TRAIN_VENV = Path(os.environ.get("TRAIN_VENV", ROOT / ".cache" / "train-venv"))
# tiny_workload.py --cache: its pretrained models, one per setting.
WORKLOAD_CACHE = ROOT / ".cache" / "tiny-workload"
# Small enough for a short run with several checkpoints: 3 x 32 samples / grad accumulation 4 = 24 steps.
SAMPLES = 32
GRAD_ACCUMULATION = 4
SAVE_STEPS = 5
TOTAL_STEPS = 24

# The role installs the package's directory as it is: no bytecode of the tests' imports in it.
sys.dont_write_bytecode = True
if str(FILES) not in sys.path:
    sys.path.insert(0, str(FILES))


def load_file(name: str, path: Path) -> ModuleType:
    """The Python file at `path` as module `name` (registered: dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def ensure_train_venv() -> Path:
    """The venv with the pinned training stack, (re)made when the requirements changed."""
    stamp = TRAIN_VENV / ".requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return TRAIN_VENV
    if not (TRAIN_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(TRAIN_VENV)], check=True)
    install = subprocess.run([str(TRAIN_VENV / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)],
                             capture_output=True, text=True)
    if install.returncode != 0:
        pytest.fail(f"installing the training stack into {TRAIN_VENV} failed:\n{install.stderr[-3000:]}")
    stamp.write_text(digest + "\n")
    return TRAIN_VENV


@pytest.fixture(scope="session")
def train_venv() -> Path:
    return ensure_train_venv()


@pytest.fixture(scope="session")
def workload(train_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bucket")
    # The pretrained model (about a minute to make) from the machine's cache after the first session.
    subprocess.run([str(train_venv / "bin" / "python"), str(FILES / "tiny_workload.py"), str(root),
                    "--samples", str(SAMPLES), "--cache", str(WORKLOAD_CACHE)], check=True, capture_output=True)
    return root


def agent_command(python: str, config: Path) -> list[str]:
    """The command line of train.sh: the agent's package as a module, on the configuration file `config`."""
    return [python, "-m", "train_agent", "--config", str(config)]


def agent_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (this process's by default) with the directory that holds the agent's package on PYTHONPATH."""
    env = dict(os.environ if env is None else env)
    paths = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
    env["PYTHONPATH"] = os.pathsep.join([str(FILES), *paths])
    return env


def run_agent(config: Path, python: str = "python3", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the training agent as train.service does, on the configuration file `config`."""
    return subprocess.run(agent_command(python, config), env=agent_env(), capture_output=True, text=True,
                          timeout=timeout)


def agent_config(train_venv: Path, workload: Path, output_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The agent's configuration for the tiny workload: the recipe's arguments, scaled down."""
    config = {
        "output_dir": str(output_dir),
        "swift": str(train_venv / "bin" / "swift"),
        "python": str(train_venv / "bin" / "python"),
        "log_dir": str(output_dir.parent / "train-service-log"),
        "manifest_interval": 1.0,
        # No metadata service here; the notice tests give their own (metadata_url).
        "notice_poll_interval": 0,
        "arguments": {
            "model": str(workload / "tiny-qwen2"), "model_type": "qwen2", "template": "deepseek_r1",
            "tuner_type": "lora",
            "dataset": [f"{workload / name}#{SAMPLES}"
                        for name in ("alpaca-gpt4-data-zh", "alpaca-gpt4-data-en", "self-cognition")],
            "torch_dtype": "bfloat16", "num_train_epochs": 1, "per_device_train_batch_size": 1,
            "per_device_eval_batch_size": 1, "learning_rate": "1e-4", "lora_rank": 8, "lora_alpha": 32,
            "target_modules": "all-linear", "gradient_accumulation_steps": GRAD_ACCUMULATION, "eval_steps": 50,
            "save_steps": SAVE_STEPS, "save_total_limit": 5, "logging_steps": 1, "max_length": 2048,
            "add_version": False, "overwrite_output_dir": True, "system": "You are a helpful assistant.",
            "warmup_ratio": 0.05, "dataloader_num_workers": 0, "model_author": "swift", "model_name": "swift-robot",
            "split_dataset_ratio": 0, "seed": 42,
        },
    }
    config.update(overrides)
    return config


@pytest.fixture
def write_config(train_venv: Path, workload: Path, tmp_path: Path) -> Callable[..., Path]:
    def write(output_dir: Path, **overrides: Any) -> Path:
        path = tmp_path / f"config-{output_dir.name}.json"
        path.write_text(json.dumps(agent_config(train_venv, workload, output_dir, **overrides)))
        return path

    return write


@pytest.fixture(scope="session")
def trained(train_venv: Path, workload: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output directory of a complete agent-driven training run (checkpoints 5 to 24)."""
    base = tmp_path_factory.mktemp("trained")
    config = base / "config.json"
    config.write_text(json.dumps(agent_config(train_venv, workload, base / "output")))
    run = run_agent(config, python=str(train_venv / "bin" / "python"), timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return base / "output"


@pytest.fixture
def output_copy(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the trained output, to corrupt."""
    copy = tmp_path / "output"
    shutil.copytree(trained, copy, symlinks=True)
    return copy
