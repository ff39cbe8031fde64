"""image_bake's last check refuses an image with any credential-shaped value in it: the role's verify tasks
on a tree planted with each kind (and passing a clean one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

PLANTED = {
    "AccessKey file of s3fs": ("etc/passwd-s3fs", "LTAI5tPlantedKeyId0001:PlantedSecret0123456789abcdef\n"),
    "STS credentials": ("root/sts.txt", "id=STS.NUjXqf3mTkx1Sb8ZPLk9rVc\n"),
    "AccessKey secret in JSON": ("opt/agent/config.json",
                                 json.dumps({"AccessKeySecret": "Zq8Ft3PlantedSecretValue0123"})),
    "secret key in YAML": ("root/.config/tool.yml", "secret_key: Zq8Ft3PlantedSecretValue0123\n"),
    "password in a pip index URL": ("opt/train-venv/pip.conf",
                                    "[global]\nindex-url = https://me:Planted-Pass9@mirror.example/simple\n"),
    "private key": ("home/user/.ssh/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"),
    "AWS-style key": ("etc/boto.cfg", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"),
}
CLEAN = {
    "etc/pip.conf": "[global]\nindex-url = https://mirror.example/simple\n",
    "opt/agent/config.json": json.dumps({"bucket": "ess-lora-deepseek7b-data", "secret_key": None}),
    "root/notes.txt": "SecurityToken comes from the metadata service\n",
}


def scan(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The role's verify tasks on a planted tree (its Ansible temporary directories are the tree's own: the
    controller's are not touched)."""
    tree = tmp_path / "image"
    for relative, content in files.items():
        path = tree / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        {"name": "Verify the image as image_bake does", "ansible.builtin.include_role": {
            "name": "image_bake", "tasks_from": "verify"},
         "vars": {"image_bake_verify_paths": [str(tree)],
                  "image_bake_ansible_tmp_globs": [f"{tree}/root/.ansible/tmp/ansible-tmp-*"]}}]}]))
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_CONFIG": str(tmp_path / "none.cfg"),
           "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(play),
                           "-e", f"ansible_python_interpreter={sys.executable}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_clean_image_passes(tmp_path: Path) -> None:
    run = scan(tmp_path, CLEAN)
    assert run.returncode == 0, run.stdout[-2000:]


def test_an_interrupted_runs_module_payloads_are_removed_not_taken_for_credentials(tmp_path: Path) -> None:
    """Ctrl-C on the controller leaves Ansible's payloads on the instance; one can look like a credential. They
    are removed before the scan (which then finds nothing of Ansible's), and a real credential is still found."""
    payload = "root/.ansible/tmp/ansible-tmp-1765000000.1-42-1/AnsiballZ_apt.py"
    run = scan(tmp_path, {**CLEAN, payload: "ZIPDATA = 'LTAI5tLooksLikeAKeyInBase64'\n"})
    assert run.returncode == 0, run.stdout[-2000:]
    assert not (tmp_path / "image" / payload).parent.exists()
    relative, content = PLANTED["AccessKey file of s3fs"]
    again = tmp_path / "again"
    again.mkdir()
    run = scan(again, {payload: "ZIPDATA = 'LTAI5tLooksLikeAKeyInBase64'\n", relative: content})
    assert run.returncode != 0 and relative in run.stdout and "ansible-tmp" not in run.stdout, run.stdout[-2000:]


@pytest.mark.parametrize("kind", PLANTED)
def test_the_bake_refuses_an_image_with_a_credential(tmp_path: Path, kind: str) -> None:
    relative, content = PLANTED[kind]
    run = scan(tmp_path, {**CLEAN, relative: content})
    assert run.returncode != 0, f"{kind}: the check passed"
    assert "Credentials are still on the instance" in run.stdout and relative in run.stdout, run.stdout[-2000:]
