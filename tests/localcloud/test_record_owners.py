"""Every kind of record in localcloud's store has one owner module, which the others go through.

Read from the source (AST), nothing runs: a kind is named only where its owner defines it
(`NAME = Kind("kind", ...)` or `NAME = "kind"`), and only the owner calls the store with it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "localcloud"
STORE_METHODS = {"get", "put", "list", "update", "delete"}
OWNERS = {
    "instance": "instances.py",
    "released_instance": "instances.py",
    "vpc": "network.py",
    "vswitch": "network.py",
    "security_group": "network.py",
    "scaling_group": "scaling_groups.py",
    "scaling_configuration": "scaling_groups.py",
    "scaling_activity": "scaling_groups.py",
    "lifecycle_hook": "lifecycle_hooks.py",
    "lifecycle_action": "lifecycle_hooks.py",
    "access_key": "identities.py",
    "sts_credential": "identities.py",
    "ram_role": "identities.py",
    "ram_policy": "identities.py",
    "image": "images.py",
    "spot_market": "market.py",
    "spot_price_history": "market.py",
    "ledger": "billing.py",
    "custom_event": "custom_events.py",
    "client_token": "server.py",
}
# Kinds that are also words of the APIs ("vpc" is a product, "image" a ResourceType): for them only
# the places where a kind goes (the store's methods, Kind) are checked, not every string.
API_WORDS = {"instance", "image", "vpc", "vswitch", "ledger"}


def _modules() -> dict[str, ast.Module]:
    return {str(path.relative_to(SOURCE)): ast.parse(path.read_text(), str(path))
            for path in sorted(SOURCE.rglob("*.py"))}


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "kind"` and `NAME = Kind("kind", ...)`: name -> kind."""
    found = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        value = node.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "Kind":
            value = value.args[0]
        if isinstance(value, ast.Constant) and value.value in OWNERS:
            found[node.targets[0].id] = value.value
    return found


def _store_calls(tree: ast.Module) -> list[ast.Call]:
    """Calls of the store's record methods: `store.get(...)`, `cloud.store.put(...)`, ..."""
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in STORE_METHODS:
            receiver = node.func.value
            if (isinstance(receiver, ast.Name) and receiver.id == "store") or \
                    (isinstance(receiver, ast.Attribute) and receiver.attr == "store"):
                calls.append(node)
    return calls


MODULES = _modules()


def test_each_kind_is_defined_once_by_its_owner() -> None:
    defined: dict[str, list[str]] = {}
    for name, tree in MODULES.items():
        for kind in _constants(tree).values():
            defined.setdefault(kind, []).append(name)
    assert defined == {kind: [owner] for kind, owner in OWNERS.items()}


@pytest.mark.parametrize("module", sorted(set(MODULES) - {"store.py"}))
def test_only_the_owner_calls_the_store_with_its_kind(module: str) -> None:
    tree = MODULES[module]
    own = _constants(tree)
    wrong = []
    for call in _store_calls(tree):
        kind = call.args[0] if call.args else None
        if not (isinstance(kind, ast.Name) and kind.id in own):
            wrong.append(f"{module}:{call.lineno}: {ast.unparse(call.func)}({ast.unparse(kind) if kind else ''}, ...)")
    assert not wrong, "the store is called with a kind this module does not own; go through the owner:\n" + \
        "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_other_module_names_a_kind(module: str) -> None:
    named = [(node.lineno, node.value) for node in ast.walk(MODULES[module])
             if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and node.value in OWNERS and node.value not in API_WORDS and OWNERS[node.value] != module]
    assert not named, f"{module} names kinds it does not own: {named}"


def test_the_rule_sees_a_stray_literal() -> None:
    tree = ast.parse('def f(cloud):\n    return cloud.store.list("instance")\n')
    calls = _store_calls(tree)
    assert len(calls) == 1 and isinstance(calls[0].args[0], ast.Constant) and not _constants(tree)
