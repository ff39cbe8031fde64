"""What image_bake leaves: no identity, no secrets, no logs or caches; the service enabled but stopped."""

import pytest


def test_training_service_is_stopped_and_still_enabled(host):
    service = host.service("train")
    assert service.is_enabled
    assert not service.is_running


def test_machine_id_is_empty_for_a_new_one_at_first_boot(host):
    assert host.file("/etc/machine-id").content_string == ""
    assert not host.file("/var/lib/dbus/machine-id").exists


def test_no_ssh_host_keys_or_authorized_keys(host):
    assert host.run("ls /etc/ssh/ssh_host_*").rc != 0
    assert not host.file("/root/.ssh/authorized_keys").exists


@pytest.mark.parametrize("path", [
    "/root/.aliyun", "/root/.bash_history", "/root/.cache/pip", "/root/train-service-log/train.log",
    "/var/lib/cloud/instances", "/var/log/syslog.1", "/tmp/leftover", "/etc/passwd-s3fs",
    "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages",
    "/root/.ansible/tmp/ansible-tmp-1765000000.1-42-1",  # an interrupted run's module payload
])
def test_planted_leftovers_are_gone(host, path):
    assert not host.file(path).exists


def test_pip_index_urls_keep_no_password(host):
    conf = host.file("/opt/train-venv/pip.conf").content_string
    assert "index-url = https://mirror.example/simple" in conf and "FakeMirrorPassword99" not in conf


def test_active_logs_are_emptied(host):
    assert host.file("/var/log/dpkg.log").size == 0


def test_no_access_key_is_left_anywhere(host):
    # testinfra runs its commands through Ansible, whose module payloads land in /root/.ansible.
    assert host.run("grep -rIl --exclude-dir=.ansible LTAI /root /etc /home /opt").stdout == ""
