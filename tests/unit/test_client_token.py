"""Creates carry a ClientToken, the same in each retry of one call, so a create that timed out after the cloud
made the resource is answered with that resource when it is tried again, not with a second one."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from ansible_collections.spotfirst.finetune.plugins.module_utils.alicloud import (
    IDEMPOTENT_CREATES,
    RPC_PRODUCTS,
    with_client_token,
)

ROOT = Path(__file__).resolve().parents[2]
CALL = re.compile(r'\.call\(\s*"(?P<product>[a-z]+)",\s*"(?P<action>[A-Za-z]+)"')


def request_model(product: str, action: str) -> type:
    return getattr(importlib.import_module(f"{RPC_PRODUCTS[product]}.models"), f"{action}Request")


def takes_a_client_token(product: str, action: str) -> bool:
    return "client_token" in vars(request_model(product, action)())


def calls_in_the_collection() -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        found |= {(m["product"], m["action"]) for m in CALL.finditer(path.read_text())}
    return found


def test_every_create_the_modules_make_that_takes_a_token_gets_one() -> None:
    creates = {(product, action) for product, action in calls_in_the_collection()
               if (action.startswith("Create") or action == "RunInstances")
               and hasattr(importlib.import_module(f"{RPC_PRODUCTS[product]}.models"), f"{action}Request")}
    assert creates, "no create call found: the pattern no longer matches the modules"
    assert {c for c in creates if takes_a_client_token(*c)} == set(IDEMPOTENT_CREATES)


@pytest.mark.parametrize(("product", "action"), sorted(IDEMPOTENT_CREATES))
def test_the_token_is_one_the_api_takes(product: str, action: str) -> None:
    params = with_client_token(product, action, {"VpcName": "train", "CidrBlock": "172.16.0.0/12"})
    token = params["ClientToken"]
    assert len(token) <= 64 and token.isascii() and token.isalnum()
    assert request_model(product, action)().from_map(params).client_token == token
    # One call, one token; the next call (its own create) another.
    assert with_client_token(product, action, {"VpcName": "train"})["ClientToken"] != token


def test_a_given_token_is_kept_and_other_calls_get_none() -> None:
    assert with_client_token("vpc", "CreateVpc", {"ClientToken": "mine"}) == {"ClientToken": "mine"}
    assert with_client_token("ecs", "DescribeInstances", {"RegionId": "cn-hangzhou"}) == {"RegionId": "cn-hangzhou"}
    assert with_client_token("ram", "CreateRole", {"RoleName": "r"}) == {"RoleName": "r"}
