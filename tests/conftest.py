"""Shared fixtures: a localcloud of the tests' own (own state dir, free ports), and SDK clients for it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localcloud import cli

ROOT = Path(__file__).resolve().parent.parent

SDK_CLIENTS = {
    "ecs": ("alibabacloud_ecs20140526.client", "Client"),
    "ess": ("alibabacloud_ess20220222.client", "Client"),
    "ram": ("alibabacloud_ram20150501.client", "Client"),
    "vpc": ("alibabacloud_vpc20160428.client", "Client"),
    "sts": ("alibabacloud_sts20150401.client", "Client"),
    "cms": ("alibabacloud_cms20190101.client", "Client"),
}


@dataclass
class LocalCloud:
    state_dir: Path
    env: dict[str, str]

    @property
    def endpoint(self) -> str:
        return self.env["LOCALCLOUD_ENDPOINT"]

    @property
    def oss_endpoint(self) -> str:
        return self.env["LOCALCLOUD_OSS_ENDPOINT"]

    @property
    def access_key_id(self) -> str:
        return self.env["ALIBABA_CLOUD_ACCESS_KEY_ID"]

    @property
    def access_key_secret(self) -> str:
        return self.env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]

    @property
    def region(self) -> str:
        return self.env["ALIBABA_CLOUD_REGION_ID"]

    def admin(self, route: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        return cli.admin_call(self.state_dir, route, args)

    def client(self, product: str, access_key_id: str | None = None, access_key_secret: str | None = None,
               security_token: str | None = None) -> Any:
        """An official SDK client (`ecs`, `ess`, `ram`, `vpc`, `sts`, `cms`) for this cloud; root keys by default."""
        from alibabacloud_tea_openapi.models import Config

        module_name, class_name = SDK_CLIENTS[product]
        module = __import__(module_name, fromlist=[class_name])
        config = Config(
            access_key_id=access_key_id or self.access_key_id,
            access_key_secret=access_key_secret or self.access_key_secret,
            security_token=security_token,
            endpoint=self.endpoint, protocol="http", region_id=self.region,
        )
        return getattr(module, class_name)(config)

    def restart(self) -> None:
        """Stop and start the daemon; instances (and their containers) stay."""
        cli.down(self.state_dir)
        self.env = start(self.state_dir)


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
    return env


def start(state_dir: Path, **options: Any) -> dict[str, str]:
    """Start (or restart) the localcloud of `state_dir`; `backend` is kept from its first start unless given."""
    cli.up(state_dir, options.get("host"), None, None, options.get("time_scale"),
           options.get("engine_interval", 0.2), options.get("backend"))
    return read_env(state_dir / cli.ENV_FILE)


def stop(state_dir: Path, backend: str) -> None:
    """Stop a test's localcloud; container instances, their networks and images go with it."""
    cli.down(state_dir, purge=backend == "containers")


@pytest.fixture(scope="session")
def localcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """One localcloud for the session's API tests (time scale 1, instances are records: fast)."""
    state_dir = tmp_path_factory.mktemp("localcloud")
    cloud = LocalCloud(state_dir, start(state_dir, backend="records"))
    yield cloud
    stop(state_dir, "records")


@pytest.fixture
def make_localcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Start a fresh localcloud with options (time_scale, host, backend: records unless
    `backend="containers"`); stopped, and its containers removed, after the test."""
    started: list[tuple[Path, str]] = []

    def factory(**options: Any) -> LocalCloud:
        state_dir = tmp_path_factory.mktemp("localcloud")
        options.setdefault("backend", "records")
        started.append((state_dir, options["backend"]))
        return LocalCloud(state_dir, start(state_dir, **options))

    yield factory
    for state_dir, backend in started:
        stop(state_dir, backend)


os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
sys.path.insert(0, str(ROOT))
# The collection's module_utils by their collection names, as Ansible imports them (the playbooks'
# filters import them too): collections/ansible_collections/spotfirst/finetune links back to ROOT.
if str(ROOT / "collections") not in sys.path:
    sys.path.insert(0, str(ROOT / "collections"))
