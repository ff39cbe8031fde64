"""The molecule scenarios: `molecule test` (the default scenario, all five roles on one instance)
and `molecule test -s <role>` (molecule/<role>/, one role alone).

Each scenario boots the localcloud base image (Debian 12 with systemd) under podman, converges,
checks idempotence and verifies with testinfra. They need root, podman and the base image, which
is built (once per machine) here when it is missing.

The scenarios of a session start at once and run side by side (scenario_runs; minutes measured on a
2-core machine are in docs/development.md). Which runs cover which assertions:

- default: gpu_driver's converge (it refuses to go on without a GPU when one is required, then
  writes NVIDIA's repository) and then python_env, ossfs_mount (a real localcloud bucket),
  train_service and image_bake on the same instance, in site.yml's order; idempotence of all
  five together; its verifier (molecule/default/tests/test_default.py) runs every test of
  molecule/<role>/tests/test_default.py of every role against that instance, except those its
  NOT_HERE names (ossfs_mount's passwd file at /etc, which would fail image_bake's credential
  check there: a replacement test checks the file where the default scenario puts it).
- gpu_driver, python_env, train_service: nothing beyond the default scenario, so they are not run
  here (COVERED_BY_DEFAULT; test_default_scenario_runs_every_test proves it); `molecule test -s
  <role>` still runs each alone.
- ossfs_mount: its own localcloud bucket mounted with the AccessKey file at /etc/passwd-s3fs.
- image_bake: its own prepare, a running stand-in train.service that the role must stop.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted(path.parent.name for path in (ROOT / "molecule").glob("*/molecule.yml"))
ROLES = sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "tasks" / "main.yml").exists())
# Roles whose scenario asserts nothing that the default scenario does not: only `default` runs for them.
COVERED_BY_DEFAULT = {"gpu_driver", "python_env", "train_service"}
RUNS = ["default", *(role for role in ROLES if role not in COVERED_BY_DEFAULT)]

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
    from localcloud.backends import podman_image

    try:
        return podman_image.build()
    except podman_image.ImageError as exc:
        pytest.skip(f"the localcloud base image cannot be built: {exc}")


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scenarios_exist_for_every_role() -> None:
    assert sorted([*ROLES, "default"]) == SCENARIOS


def test_default_scenario_runs_every_test() -> None:
    default = load_module(ROOT / "molecule" / "default" / "tests" / "test_default.py", "molecule_default_tests")
    assert sorted(default.ROLES) == ROLES
    for role in ROLES:
        role_tests = load_module(ROOT / "molecule" / role / "tests" / "test_default.py", f"molecule_{role}_tests")
        for name in (name for name in vars(role_tests) if name.startswith("test_")):
            if (role, name) in default.NOT_HERE:
                assert role not in COVERED_BY_DEFAULT, f"{role}'s {name} runs in no scenario of test_molecule_scenario"
            else:
                loaded = f"test_{role}__{name.removeprefix('test_')}"
                assert loaded in vars(default), f"{role}'s {name} is not run by the default scenario"


@pytest.fixture(scope="session")
def scenario_runs(request: pytest.FixtureRequest, base_image: str, tmp_path_factory: pytest.TempPathFactory):
    """The scenarios this session runs, all started at once: a scenario waits on its containers' commands
    (pip, apt, training) and on Ansible's round trips through `podman exec` more than it computes, so
    side by side they take little longer than the longest alone. Each scenario has its own containers,
    localcloud and ephemeral directory. By scenario: its command, its running process and its output file."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", MOLECULE_IMAGE=base_image,
               ANSIBLE_FORCE_COLOR="0", PY_COLORS="0", NO_COLOR="1")
    Path(env.setdefault("MOLECULE_PIP_CACHE", str(Path.home() / ".cache" / "pip"))).mkdir(parents=True, exist_ok=True)
    if not Path(env.get("MOLECULE_WHEELS", "/opt/wheels")).is_dir():
        pytest.skip("no wheel directory for the CPU build of torch (/opt/wheels or $MOLECULE_WHEELS)")
    wanted = [item.callspec.params["scenario"] for item in request.session.items
              if getattr(item, "originalname", None) == "test_molecule_scenario"]
    logs = tmp_path_factory.mktemp("molecule")
    runs = {}
    for scenario in wanted:
        # `molecule test` alone is the default scenario, as a user runs it.
        command = ["molecule", "test"] if scenario == "default" else ["molecule", "test", "-s", scenario]
        output = open(logs / f"{scenario}.log", "w+")  # noqa: SIM115 - closed below, once the scenario is done
        # A session of its own: a scenario stopped early is stopped with its ansible-playbook and testinfra.
        process = subprocess.Popen([str(bin_dir / "molecule"), *command[1:]], cwd=ROOT, env=env, stdout=output,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        runs[scenario] = (" ".join(command), process, output)
    yield runs
    for _, process, output in runs.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output.close()


@pytest.mark.parametrize("scenario", RUNS)
def test_molecule_scenario(scenario: str, scenario_runs) -> None:
    command, process, output = scenario_runs[scenario]
    returncode = process.wait(timeout=3600)
    output.seek(0)
    assert returncode == 0, f"{command} failed:\n{output.read()[-12000:]}"
