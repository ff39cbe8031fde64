"""End-to-end runs of site.yml, chaos.yml and teardown.yml through ansible-runner, on a localcloud
of the test's own (own state directory and ports, so they neither use nor disturb `make demo`'s)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROJECT = "ess-lora-deepseek7b"


@dataclass
class PlaybookRun:
    """The outcome of one playbook run: status, return code, stats of localhost, the events."""

    status: str
    rc: int
    stats: dict[str, Any]
    events: list[dict[str, Any]]
    stdout: str

    def changed(self, host: str = "localhost") -> int:
        return int(self.stats.get("changed", {}).get(host, 0))

    def changed_tasks(self) -> list[str]:
        return [e["event_data"].get("task", "") for e in self.events
                if e.get("event") == "runner_on_ok" and e["event_data"].get("res", {}).get("changed")]


def run_playbook(cloud: Any, playbook: str, private_dir: Path, extravars: dict[str, Any] | None = None,
                 tags: str | None = None, skip_tags: str | None = None, timeout: int = 1800) -> PlaybookRun:
    """Run a playbook of the project with ansible-runner against `cloud` (inventory/local)."""
    import ansible_runner

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "ALICLOUD_", "LOCALCLOUD_"))}
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), LOCALCLOUD_HOME=str(cloud.state_dir),
               PATH=f"{BIN}:{env.get('PATH', '')}", ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    private_dir.mkdir(parents=True, exist_ok=True)
    runner = ansible_runner.run(
        private_data_dir=str(private_dir), project_dir=str(ROOT), playbook=str(ROOT / playbook),
        inventory=str(ROOT / "inventory" / "local"), envvars=env, extravars=extravars or {},
        tags=tags, skip_tags=skip_tags, quiet=True, timeout=timeout, json_mode=False,
        cmdline=None)
    stdout = runner.stdout.read() if runner.stdout else ""
    return PlaybookRun(runner.status, runner.rc, runner.stats or {}, list(runner.events), stdout)


def read_report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
