"""The spotfirst.finetune.brief stdout callback (make demo's output) on a local play."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

PLAY = [{"name": "Brief", "hosts": "localhost", "gather_facts": False, "tasks": [
    {"name": "Look only", "ansible.builtin.command": "true", "changed_when": False},
    {"name": "Change one", "ansible.builtin.command": "true"},
    {"name": "Change each", "ansible.builtin.command": "echo {{ item }}", "loop": ["a", "b"]},
    {"name": "Skipped", "ansible.builtin.command": "true", "when": False},
    {"name": "Say", "ansible.builtin.debug": {"msg": ["line one", {"key": 1}]}},
    {"name": "Fail", "ansible.builtin.command": "false"},
]}]


def test_a_line_per_change_the_messages_and_failures_in_full(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK":
           "spotfirst.finetune.brief", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0"}
    run = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e",
                          f"ansible_python_interpreter={sys.executable}", str(playbook)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    start = lines.index("== Brief")
    assert lines[start + 1:start + 8] == ["  changed: Change one", "  changed: Change each (a)",
                                          "  changed: Change each (b)", "  -- Say", "    line one", "    key: 1", ""]
    assert lines[start + 8].startswith("TASK [Fail]") and "fatal: [localhost]: FAILED!" in run.stdout
    assert "Look only" not in run.stdout and "Skipped" not in run.stdout and "ok: [localhost]" not in run.stdout
    assert "PLAY RECAP" in run.stdout
