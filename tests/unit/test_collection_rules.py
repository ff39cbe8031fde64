"""The rules of the collection spotfirst.finetune: modules in plugins/modules/, listed in the action
group, called by FQCN, and given the connection once per play through the action group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# The modules on the cloud; a module whose work is an action plugin (wait_until) is documentation only.
ACTIONS = sorted(p.stem for p in (ROOT / "plugins" / "action").glob("*.py"))
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem not in ACTIONS)
PLAYBOOKS = sorted([*ROOT.glob("*.yml"), *(ROOT / "playbooks").rglob("*.yml"), *(ROOT / "roles").rglob("*.yml"),
                    *(ROOT / "molecule").rglob("*.yml")])
NESTED = ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always")
SKIPPED_DIRS = {".venv", ".cache", ".localcloud", ".git", "collections", "node_modules"}


def entries(node: Any) -> Iterator[dict[str, Any]]:
    """Every play, task and block of a playbook or task file."""
    if isinstance(node, list):
        for item in node:
            if isinstance(item, dict):
                yield item
                for key in NESTED:
                    yield from entries(item.get(key))


def violations(check: Any) -> list[str]:
    found = []
    for path in PLAYBOOKS:
        for entry in entries(yaml.safe_load(path.read_text())):
            found += [f"{path.relative_to(ROOT)}: {problem}" for problem in check(entry)]
    return found


def test_every_module_is_in_plugins_modules():
    stray = [str(p.relative_to(ROOT)) for p in ROOT.rglob("alicloud_*.py")
             if not SKIPPED_DIRS & set(p.relative_to(ROOT).parts) and p.parent.relative_to(ROOT).parts[:1] != ("tests",)
             and p.parent != ROOT / "plugins" / "modules" and "DOCUMENTATION" in p.read_text()
             and "\nmodule:" in p.read_text()]
    assert not stray
    assert not [p for p in ROOT.glob("**/library") if not SKIPPED_DIRS & set(p.relative_to(ROOT).parts)]
    assert "library" not in (ROOT / "ansible.cfg").read_text()


def test_the_action_group_lists_every_module():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    assert sorted(runtime["action_groups"]["alicloud"]) == MODULES


def test_modules_are_called_by_fqcn():
    by_fqcn = MODULES + ACTIONS
    assert violations(lambda entry: [f"{key} without spotfirst.finetune." for key in entry if key in by_fqcn]) == []


def test_plays_give_the_connection_once_through_the_action_group():
    def per_module(entry: dict[str, Any]) -> list[str]:
        defaults = entry.get("module_defaults") or {}
        return [f"module_defaults for {key}" for key in defaults
                if key.rsplit(".", 1)[-1] in MODULES and "alicloud_connection" in str(defaults[key])]
    assert violations(per_module) == []


@pytest.mark.parametrize("path", sorted((ROOT / "plugins").glob("*/*.py")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_plugins_documentation_is_yaml(path: Path) -> None:
    """ansible-doc, ansible-lint and the inventory and callback loaders parse these; a stray `: ` breaks them."""
    import ast

    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in ("DOCUMENTATION", "RETURN",
                                                                                  "EXAMPLES"):
            assert yaml.safe_load(node.value.value) is not None or node.targets[0].id != "DOCUMENTATION"
