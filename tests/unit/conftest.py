"""Unit tests of the alicloud_* helpers (tests/conftest.py makes the collection's modules and module_utils
importable by their collection names, `ansible_collections.spotfirst.finetune.plugins...`)."""

from __future__ import annotations

from typing import Any

import pytest


class Failed(Exception):
    pass


class FakeModule:
    """What the helpers use of AlicloudModule: params, check mode, region, and scripted API answers."""

    def __init__(self, params: dict[str, Any], check_mode: bool = False,
                 answers: dict[str, Any] | None = None) -> None:
        self.params = params
        self.check_mode = check_mode
        self.region = "cn-hangzhou"
        self.answers = answers or {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def call(self, product: str, action: str, params: dict[str, Any] | None = None, *,
             missing_ok: tuple[str, ...] = ()) -> Any:
        self.calls.append((product, action, dict(params or {})))
        answer = self.answers.get(action, {})
        return answer(params) if callable(answer) else answer

    def actions(self) -> list[str]:
        return [action for _, action, _ in self.calls]

    def fail_json(self, **kwargs: Any) -> None:
        raise Failed(kwargs["msg"])

    def wait(self, describe: Any, done: Any, **kwargs: Any) -> Any:
        return describe()


@pytest.fixture
def fake_module():
    return FakeModule
