"""`molecule test -s <role>` for every role: one scenario per role in molecule/<role>/.

Each scenario boots the localcloud base image (Debian 12 with systemd) under podman, converges,
checks idempotence and verifies with testinfra. They need root, podman and the base image, which
is built (once per machine) here when it is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted(path.parent.name for path in (ROOT / "molecule").glob("*/molecule.yml"))

pytestmark = [pytest.mark.containers, pytest.mark.slow]


def require_podman() -> None:
    if os.geteuid() != 0:
        pytest.skip("molecule scenarios run rootful podman containers with systemd: run as root")
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/install-system.sh)")
    setup = subprocess.run([str(ROOT / "scripts" / "setup-podman.sh")], capture_output=True, text=True)
    if setup.returncode != 0:
        pytest.skip(f"podman cannot run containers here: {setup.stderr.strip()}")


@pytest.fixture(scope="session")
def base_image() -> str:
    require_podman()
    from localcloud import images

    try:
        return images.build()
    except images.ImageError as exc:
        pytest.skip(f"the localcloud base image cannot be built: {exc}")


def test_scenarios_exist_for_every_role() -> None:
    roles = sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "tasks" / "main.yml").exists())
    assert roles == SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, base_image: str) -> None:
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", MOLECULE_IMAGE=base_image,
               ANSIBLE_FORCE_COLOR="0", PY_COLORS="0", NO_COLOR="1")
    Path(env.setdefault("MOLECULE_PIP_CACHE", str(Path.home() / ".cache" / "pip"))).mkdir(parents=True, exist_ok=True)
    if not Path(env.get("MOLECULE_WHEELS", "/opt/wheels")).is_dir():
        pytest.skip("no wheel directory for the CPU build of torch (/opt/wheels or $MOLECULE_WHEELS)")
    run = subprocess.run([str(bin_dir / "molecule"), "test", "-s", scenario], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, f"molecule test -s {scenario} failed:\n{run.stdout[-8000:]}\n{run.stderr[-4000:]}"
