"""Integration tests of the alicloud_* modules against localcloud, through ansible-playbook.

Each test writes a small playbook (the modules, found by their short names through the play's
`collections: [spotfirst.finetune]`, get localcloud's endpoint and credentials from inventory/local
through the action group, as the project's playbooks do), runs it with the JSON callback and reads
the result of every task by its name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ansible_env(cloud: Any, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ALICLOUD_", "LOCALCLOUD_"))}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), LOCALCLOUD_HOME=str(cloud.state_dir),
               PATH=f"{BIN}:{env.get('PATH', '')}", ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    env.update(extra)
    return env


class Run:
    """The outcome of one ansible-playbook run: task results by name, the stats, the raw output."""

    def __init__(self, process: subprocess.CompletedProcess[str], parsed: dict[str, Any] | None) -> None:
        self.returncode = process.returncode
        self.output = process.stdout + process.stderr
        self.tasks: dict[str, dict[str, Any]] = {}
        self.stats: dict[str, Any] = {}
        if parsed:
            for play in parsed.get("plays", []):
                for task in play.get("tasks", []):
                    result = task.get("hosts", {}).get("localhost")
                    if result is not None:
                        self.tasks[task["task"]["name"]] = result
            self.stats = parsed.get("stats", {}).get("localhost", {})

    def __getitem__(self, name: str) -> dict[str, Any]:
        if name not in self.tasks:
            raise AssertionError(f"no result for task {name!r}; output:\n{self.output[-4000:]}")
        return self.tasks[name]


def run_playbook(cloud: Any, tmp_path: Path, tasks: list[dict[str, Any]], *args: str, name: str = "play") -> Run:
    """Run `tasks` on localhost with module_defaults pointing every alicloud_* module at `cloud`."""
    play = [{"name": "Integration test", "hosts": "localhost", "gather_facts": False,
             "collections": ["spotfirst.finetune"],
             "module_defaults": {"group/spotfirst.finetune.alicloud": "{{ alicloud_connection }}"}, "tasks": tasks}]
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return run_file(cloud, path, *args)


def run_file(cloud: Any, path: Path, *args: str, callback: str = "ansible.posix.json") -> Run:
    process = subprocess.run([str(BIN / "ansible-playbook"), str(path), *args], cwd=ROOT, capture_output=True,
                             text=True, timeout=600, env=ansible_env(cloud, ANSIBLE_STDOUT_CALLBACK=callback))
    parsed = None
    if callback.endswith("json"):
        start = process.stdout.find("{")
        parsed = json.loads(process.stdout[start:]) if start >= 0 else None
    return Run(process, parsed)


def task(name: str, module: str, args: dict[str, Any], **keywords: Any) -> dict[str, Any]:
    return {"name": name, module: args, **keywords}


@pytest.fixture
def playbook(localcloud, tmp_path):
    """Run a list of tasks against the session's localcloud."""
    def run(tasks: list[dict[str, Any]], *args: str) -> Run:
        return run_playbook(localcloud, tmp_path, tasks, *args)
    return run
