"""The agent's package stays small modules with one job each, standard library only (it runs with an
instance's system python3), and runs as train.sh runs it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FILES, agent_command, agent_env

PACKAGE = FILES / "train_agent"
# ms-swift loads it into the trainer, which has ms-swift.
PLUGIN = PACKAGE / "plugin" / "callbacks.py"
MAX_LINES = 400
MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_each_module_is_small_and_says_what_it_owns(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{path.name}: split it (one job a module)"
    assert ast.get_docstring(ast.parse(text)), f"{path.name} opens with no docstring"


@pytest.mark.parametrize("path", [p for p in MODULES if p != PLUGIN],
                         ids=[str(p.relative_to(PACKAGE)) for p in MODULES if p != PLUGIN])
def test_the_agent_imports_the_standard_library_and_itself_only(path: Path) -> None:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            imported.add(node.module.split(".")[0])
    # torch and safetensors only where they are (the checkpoint checks load with them when importable).
    assert imported - sys.stdlib_module_names - {"torch", "safetensors"} == set()


def test_python_m_train_agent_runs_the_agent(tmp_path: Path) -> None:
    run = subprocess.run(agent_command(sys.executable, tmp_path / "missing.json"), env=agent_env(),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert f"no configuration at {tmp_path / 'missing.json'}" in run.stderr


def test_the_plugin_loads_where_the_agent_set_no_pythonpath(train_venv: Path, tmp_path: Path) -> None:
    """A checkpoint's args.json names the plugin, so `swift infer --adapters` (infer.yml) loads it by its path
    with ms-swift's own loader, in a process the agent did not start: it finds its package by itself."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    load = ("from swift.utils.utils import import_external_file; "
            f"import_external_file({str(PLUGIN)!r}); "
            "from swift.callbacks.mapping import callbacks_map; "
            "print(sorted(name for name in callbacks_map if name.startswith('train_agent')))")
    run = subprocess.run([str(train_venv / "bin" / "python"), "-c", load], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "['train_agent_clock', 'train_agent_handover', 'train_agent_stop']"
