"""What ossfs_mount leaves: the bucket mounted at /mnt/oss-data, persisted in fstab, key file root-only."""


def test_bucket_is_mounted_with_allow_other(host):
    mount = host.mount_point("/mnt/oss-data")
    assert mount.exists
    assert mount.filesystem.startswith("fuse")
    assert "allow_other" in host.file("/etc/fstab").content_string


def test_objects_of_the_bucket_are_visible(host):
    # Commands' output comes back without its last newline.
    assert host.run("cat /mnt/oss-data/uploaded-from-the-console.txt").stdout == "seen through the mount"


def test_fstab_entry_survives_reboots_before_the_training_service(host):
    line = next(line for line in host.file("/etc/fstab").content_string.splitlines() if "/mnt/oss-data" in line)
    assert line.startswith("molecule-ossfs-mount /mnt/oss-data fuse.s3fs ")
    assert "_netdev" in line and "x-systemd.before=train.service" in line
    assert "RequiredBy" not in line
    # V4 only: localcloud, as OSS, refuses s3fs's fallback (AWS SigV2) and ossfs's default (V1).
    assert "sigv4" in line.split()[3].split(",")
    assert host.run('systemctl cat -- "$(systemd-escape --path --suffix=mount /mnt/oss-data)"').rc == 0


def test_passwd_file_is_root_only(host):
    passwd = host.file("/etc/passwd-s3fs")
    assert passwd.user == "root" and passwd.mode == 0o600


def test_a_file_written_through_the_mount_reads_back_after_a_remount(host):
    assert host.run("echo checkpoint > /mnt/oss-data/written.txt").rc == 0
    assert host.run("umount /mnt/oss-data && mount /mnt/oss-data").rc == 0
    assert host.run("cat /mnt/oss-data/written.txt").stdout == "checkpoint"
    assert host.run("rm /mnt/oss-data/written.txt").rc == 0
