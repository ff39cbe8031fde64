"""Every role's own testinfra tests against the one instance that the five roles configured.

The tests are molecule/<role>/tests/test_default.py, loaded here under the names
test_<role>__<test>, in ROLES' order: image_bake's checks before train_service's, whose training
writes the logs again that image_bake removed; between them, the first boot of an instance of the
image makes a machine id again (image_bake emptied it; the journal needs one). NOT_HERE lists
the tests that cannot hold on this instance, with what checks it here and which scenario runs
the test itself.
"""

import importlib.util
from pathlib import Path

MOLECULE = Path(__file__).resolve().parents[2]
ROLES = ["gpu_driver", "python_env", "ossfs_mount", "image_bake", "train_service"]
# (role, test): why, and where it runs.
NOT_HERE = {
    ("ossfs_mount", "test_passwd_file_is_root_only"):
        "the AccessKey file is moved out of /etc (image_bake fails on a credential there); "
        "test_ossfs_mount__passwd_file_outside_the_baked_trees checks it here, molecule/ossfs_mount at /etc",
    ("image_bake", "test_pip_index_urls_keep_no_password"):
        "the venv's pip.conf here is python_env's, with no password to remove; molecule/image_bake plants one",
}
PASSWD_FILE = "/var/lib/molecule-passwd-s3fs"


def role_tests(role):
    path = MOLECULE / role / "tests" / "test_default.py"
    spec = importlib.util.spec_from_file_location(f"molecule_{role}_test_default", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name: test for name, test in vars(module).items() if name.startswith("test_") and callable(test)}


def test_image_bake__an_instance_of_the_image_gets_a_machine_id_at_first_boot(host):
    # image_bake emptied /etc/machine-id for the image; journalctl finds no journal without one. An
    # instance of the image makes its own at first boot, as here before train_service's tests run.
    assert host.run("systemd-machine-id-setup && systemctl restart systemd-journald").rc == 0
    assert host.file("/etc/machine-id").content_string.strip()


for _role in ROLES:
    for _name, _test in role_tests(_role).items():
        if (_role, _name) not in NOT_HERE:
            globals()[f"test_{_role}__{_name.removeprefix('test_')}"] = _test
    if _role == "image_bake":
        globals()["test_image_bake__an_instance_of_the_image_gets_a_machine_id_at_first_boot"] = globals().pop(
            "test_image_bake__an_instance_of_the_image_gets_a_machine_id_at_first_boot")


def test_ossfs_mount__passwd_file_outside_the_baked_trees(host):
    passwd = host.file(PASSWD_FILE)
    assert passwd.user == "root" and passwd.mode == 0o600
    assert f"passwd_file={PASSWD_FILE}" in host.file("/etc/fstab").content_string
