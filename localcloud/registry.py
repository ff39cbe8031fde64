"""The registry of API actions and background work: products register into it, the cloud reads it.

Product modules (`localcloud.products.*`) register their actions with `@action(...)` and background
work (instance lifecycle steps, the Auto Scaling engine) with `@ticker`; the RPC server dispatches on
(API version, action name) through `find_action`, and `Cloud.tick` runs `tickers()`. This module
imports nothing of the products or of the cloud, so that every product can import it while the
cloud imports the products (tests/localcloud/test_module_imports.py holds the rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import Principal
    from .cloud import Cloud
    from .params import Params

# API version -> product code used in RAM actions (`ecs:RunInstances`).
PRODUCTS = {
    "2014-05-26": "ecs",
    "2022-02-22": "ess",
    "2015-05-01": "ram",
    "2016-04-28": "vpc",
    "2015-04-01": "sts",
    "2019-01-01": "cms",
}


@dataclass
class Request:
    action: str
    product: str
    params: Params
    principal: Principal
    request_id: str
    region: str


Handler = Callable[["Cloud", Request], dict[str, Any]]
# The resource an action is authorized on (relative to `acs:<product>:<region>:<account>:`, e.g.
# `scalinggroup/asg-1`), from the request's parameters; None for every resource (`*`).
Locator = Callable[["Cloud", "Params"], "str | None"]
Ticker = Callable[["Cloud"], None]
_ACTIONS: dict[tuple[str, str], Handler] = {}
_LOCATORS: dict[tuple[str, str], Locator] = {}
_TICKERS: list[Ticker] = []


def action(product: str, name: str, resource: Locator | None = None) -> Callable[[Handler], Handler]:
    """Register `fn` as the handler of `product`'s action `name` (e.g. `@action("ecs", "RunInstances")`).

    `resource` names the resource RAM authorizes the call on; without it, every resource (`*`).
    """
    def register(fn: Handler) -> Handler:
        _ACTIONS[(product, name)] = fn
        if resource is not None:
            _LOCATORS[(product, name)] = resource
        return fn
    return register


def ticker(fn: Ticker) -> Ticker:
    """Register background work run on every engine tick (e.g. the Auto Scaling engine)."""
    _TICKERS.append(fn)
    return fn


def find_action(product: str, name: str) -> Handler | None:
    return _ACTIONS.get((product, name))


def resource_of(cloud: Cloud, product: str, name: str, params: Params) -> str:
    """The relative resource an action's call is authorized on (`*` when the action names none)."""
    locate = _LOCATORS.get((product, name))
    return (locate(cloud, params) if locate else None) or "*"


def tickers() -> list[Ticker]:
    """The registered background work, in the order it was registered."""
    return list(_TICKERS)
