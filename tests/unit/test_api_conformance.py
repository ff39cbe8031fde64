"""Every API call the modules and the training agent make names an action and parameters that the pinned SDK's
request models know: a misspelt or dropped parameter fails here, not on a real account.

The calls are read from the source (`module.call("ecs", "RunInstances", {...})` in the collection, `ecs.call(
"DescribeInstances", RegionId=...)` in the agent, which signs its own requests); the parameters are the literal
keys of the dict given, of the dict a local name or function builds, and the agent's keyword arguments.
A parameter of a repeated list (`EventInfo.1.EventName`) is checked by its top-level name.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from functools import cache
from pathlib import Path

import pytest
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import RPC_PRODUCTS, _method_name

ROOT = Path(__file__).resolve().parents[2]
AGENT = ROOT / "roles" / "train_service" / "files" / "train_agent"
# The agent's clients by the names it keeps them under.
AGENT_CLIENTS = {"ecs": "ecs", "ess": "ess", "cms": "cms"}


@cache
def model_fields(product: str, action: str) -> frozenset[str] | None:
    """The parameter names of `action`'s request model (from its from_map); None when there is no model."""
    model = getattr(importlib.import_module(f"{RPC_PRODUCTS[product]}.models"), f"{action}Request", None)
    if model is None:
        return None
    return frozenset(re.findall(r"m\.get\('([^']+)'\)", inspect.getsource(model.from_map)))


def _dict_keys(node: ast.AST | None) -> set[str]:
    if isinstance(node, ast.Dict):
        return {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return set()


def _built_keys(node: ast.AST, scope: ast.AST, functions: dict[str, ast.FunctionDef]) -> set[str]:
    """The literal keys of the dict `node` is, or that the local name or the module's function it names builds."""
    if isinstance(node, ast.Dict):
        return _dict_keys(node)
    if isinstance(node, ast.Name):
        return set().union(*([_dict_keys(a.value) for a in ast.walk(scope) if isinstance(a, ast.Assign)
                              and any(isinstance(t, ast.Name) and t.id == node.id for t in a.targets)] or [set()]))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions:
        returns = [r.value for r in ast.walk(functions[node.func.id]) if isinstance(r, ast.Return)]
        return set().union(*([_dict_keys(r) for r in returns] or [set()]))
    return set()


def collection_calls() -> list[tuple[str, str, str, frozenset[str]]]:
    """(where, product, action, parameters) of every `.call("<product>", "<Action>", ...)` in the collection."""
    found = []
    for path in sorted((ROOT / "plugins").rglob("*.py")):
        tree = ast.parse(path.read_text())
        functions = {f.name: f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)}
        for function in functions.values():
            for call in ast.walk(function):
                if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "call" and len(call.args) >= 2
                        and all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in call.args[:2])):
                    continue
                product, action = call.args[0].value, call.args[1].value
                keys = _built_keys(call.args[2], function, functions) if len(call.args) > 2 else set()
                found.append((f"{path.relative_to(ROOT)}:{call.lineno}", product, action, frozenset(keys)))
    return found


def agent_calls() -> list[tuple[str, str, str, frozenset[str]]]:
    """The agent's `<client>.call("<Action>", Name=...)`, the product told by the client's name."""
    found = []
    for path in sorted(AGENT.glob("*.py")):
        for call in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "call"
                    and call.args and isinstance(call.args[0], ast.Constant)):
                continue
            receiver = call.func.value
            name = receiver.attr if isinstance(receiver, ast.Attribute) else getattr(receiver, "id", "")
            keys = {k.arg for k in call.keywords if k.arg}
            keys |= {key for k in call.keywords if k.arg is None for key in _dict_keys(k.value)}
            found.append((f"{path.relative_to(ROOT)}:{call.lineno}", AGENT_CLIENTS[name], call.args[0].value,
                          frozenset(key.split(".")[0] for key in keys)))
    return found


CALLS = collection_calls() + agent_calls()


def test_the_calls_are_found() -> None:
    products = {product for _, product, _, _ in CALLS}
    assert len(CALLS) > 60 and {"ecs", "ess", "ram", "vpc", "cms"} <= products, CALLS
    assert sum(1 for where, *_ in CALLS if where.startswith("roles/")) >= 6


@pytest.mark.parametrize(("where", "product", "action", "keys"), CALLS, ids=[c[0] for c in CALLS])
def test_each_call_is_one_the_sdk_knows(where: str, product: str, action: str, keys: frozenset[str]) -> None:
    fields = model_fields(product, action)
    client = importlib.import_module(f"{RPC_PRODUCTS[product]}.client").Client
    try:
        _method_name(client, action)  # how the modules find the SDK's method for an action
    except AttributeError:
        pytest.fail(f"{where}: the {product} SDK has no action {action}")
    if fields is None:
        assert not keys, f"{where}: {action} takes no request, and is given {sorted(keys)}"
        return
    assert keys <= fields, f"{where}: {product} {action} has no parameter {sorted(keys - fields)}"
