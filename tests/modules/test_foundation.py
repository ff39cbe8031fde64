"""playbooks/foundation.yml on a fresh localcloud: idempotent, and no secret in verbose output."""

from __future__ import annotations

from .conftest import ROOT, run_file


def test_foundation_twice_second_run_changes_nothing_and_hides_secrets(make_localcloud):
    cloud = make_localcloud()
    first = run_file(cloud, ROOT / "playbooks" / "foundation.yml", "-vvv", callback="default")
    assert first.returncode == 0, first.output[-3000:]
    assert cloud.access_key_secret not in first.output
    second = run_file(cloud, ROOT / "playbooks" / "foundation.yml")
    assert second.returncode == 0, second.output[-3000:]
    assert second.stats["changed"] == 0 and second.stats["ok"] >= 8
