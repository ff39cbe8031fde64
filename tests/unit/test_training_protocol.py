"""The contract between the training agent and the controller is written once: in
plugins/module_utils/training_protocol.py, which the agent's package holds as a link and the controller
imports. A copy of one of its names elsewhere (a string in code, a value in a playbook) fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ansible_collections.spotfirst.finetune.plugins.module_utils import training_protocol

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "plugins" / "module_utils" / "training_protocol.py"
AGENT_PROTOCOL = ROOT / "roles" / "train_service" / "files" / "train_agent" / "protocol.py"
SKIPPED_DIRS = {".venv", ".cache", ".localcloud", ".git", "collections", "node_modules", "__pycache__"}
# The names only the agent and the playbooks use; the recipe's own names (train.log, trainer_state.json,
# ms-swift's step key) and the settings a user may change (the log directory, the lease key) are not.
CONTRACT = ("MANIFEST_NAME", "COMPLETE_MARKER", "EVENTS_DIR", "RESUME_MARK", "FRESH_MARK", "STOPPED_MARK",
            "LEASE_MARK", "LEASE_WAIT_MARK", "GO_FILE_ENV", "READY_MARK", "CLOCK_MARK", "STOP_MARK")
# Two marks are plain words a message may use ("the newest valid checkpoint"); their copy is the log line's
# form, the mark and its colon.
IN_LOG_LINES = {"RESUME_MARK", "FRESH_MARK"}
VALUES = {name: getattr(training_protocol, name) + (":" if name in IN_LOG_LINES else "") for name in CONTRACT}


def project_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in ROOT.rglob("*") if p.suffix in suffixes and p.is_file() and not p.is_symlink()
                  and not SKIPPED_DIRS & set(p.relative_to(ROOT).parts) and p != PROTOCOL)


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings (prose, not a copy)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def python_copies(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    prose = docstrings(tree)
    return [f"{path.relative_to(ROOT)}:{node.lineno}: {name}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
            for name, value in VALUES.items() if value in node.value]


def yaml_copies(path: Path) -> list[str]:
    """A value in a playbook, a template or a role (comments and task names are prose)."""
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if text.startswith(("#", "- name:", "name:")):
            continue
        found += [f"{path.relative_to(ROOT)}:{number}: {name}" for name, value in VALUES.items() if value in line]
    return found


def test_the_agent_holds_the_protocol_as_a_link_to_module_utils():
    assert AGENT_PROTOCOL.is_symlink()
    assert AGENT_PROTOCOL.resolve() == PROTOCOL


@pytest.mark.parametrize("kind", ["python", "yaml"])
def test_no_copy_of_a_contract_name_outside_the_protocol(kind):
    if kind == "python":
        copies = [c for path in project_files(".py") for c in python_copies(path)]
    else:
        copies = [c for path in project_files(".yml", ".yaml", ".j2", ".cfg", ".sh") for c in yaml_copies(path)]
    assert copies == [], "import these names from training_protocol (the agent: from .protocol import ...)"


def test_the_scan_finds_a_copy(tmp_path):
    """The scan above is not blind: a string literal and a playbook value holding a name are found."""
    (tmp_path / "copy.py").write_text(f'"""{VALUES["COMPLETE_MARKER"]} in a docstring is prose."""\n'
                                      f'MARKER = "output/{VALUES["COMPLETE_MARKER"]}"\n')
    (tmp_path / "copy.yml").write_text(f"# {VALUES['EVENTS_DIR']} in a comment is prose\n"
                                       f"events: {VALUES['EVENTS_DIR']}\n")
    global ROOT
    root, ROOT = ROOT, tmp_path
    try:
        assert python_copies(tmp_path / "copy.py") == ["copy.py:2: COMPLETE_MARKER"]
        assert yaml_copies(tmp_path / "copy.yml") == ["copy.yml:2: EVENTS_DIR"]
    finally:
        ROOT = root
