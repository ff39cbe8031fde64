"""The spotfirst.finetune.wait_until action's progress: one line redrawn in place on a terminal, a line per
change elsewhere; first its ProgressLine on a fake screen, then a local play on a pseudo-terminal and a pipe."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from ansible_collections.spotfirst.finetune.plugins.action import wait_until
from ansible_collections.spotfirst.finetune.plugins.action.wait_until import ProgressLine, fit, terminal_width

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def shown(text: str) -> list[str]:
    """The rows a terminal shows for `text`: a carriage return goes back to the row's start and what
    follows overwrites what was there."""
    rows = []
    for row in text.replace("\r\n", "\n").split("\n"):
        seen = ""
        for part in row.split("\r"):
            seen = part + seen[len(part):]
        rows.append(seen.rstrip())
    return rows


class FakeDisplay:
    """Display.display on a fake screen (what was sent to the screen) and log (log_path)."""

    def __init__(self) -> None:
        self.screen = ""
        self.log: list[str] = []

    def __call__(self, msg: str, newline: bool = True, screen_only: bool = False, log_only: bool = False,
                 **_: Any) -> None:
        if not log_only:
            self.screen += msg + ("\n" if newline else "")
        if not screen_only:
            self.log.append(msg)


def test_elsewhere_than_a_terminal_a_line_per_change():
    display = FakeDisplay()
    progress = ProgressLine(display, "  host")
    for waited, text in ((1, "step 1/3"), (4, "step 1/3"), (7, None), (10, "step 2/3")):
        progress.update(waited, text)
    progress.close()
    assert display.screen == "  host [1s] step 1/3\n  host [10s] step 2/3\n"
    assert display.log == ["  host [1s] step 1/3", "  host [10s] step 2/3"]
    assert progress.changes == ["step 1/3", "step 2/3"]


def test_on_a_terminal_one_line_redrawn_at_every_poll_and_finished_before_what_follows():
    display = FakeDisplay()
    progress = ProgressLine(display, "  host", lambda: 100)
    one, two = "step 1/3 (33.3 %), 2 min left, lease i-1", "step 2/3 (66.7 %), 1 min left, lease i-1"
    for waited, text in ((1, one), (4, one), (7, two)):
        progress.update(waited, text)
    progress.close()
    display("ok: the next task")
    assert display.screen.count("\r") == 3  # the clock ticks at the poll whose text did not change
    assert shown(display.screen) == [f"  host [7s] {two}", "ok: the next task", ""]
    assert display.log == [f"  host [1s] {one}", f"  host [7s] {two}", "ok: the next task"]
    assert progress.changes == [one, two]


def test_on_a_terminal_a_shorter_line_covers_a_longer_one_and_a_long_one_stays_on_its_row():
    display = FakeDisplay()
    progress = ProgressLine(display, "  host", lambda: 40)
    progress.update(1, "not started yet (no step logged, lease held by i-12345)")
    first = shown(display.screen)[0]
    assert len(first) == 39 and first.endswith("\u2026")
    progress.update(4, "step 1/3")
    progress.close()
    assert shown(display.screen) == ["  host [4s] step 1/3", ""]


def test_on_a_terminal_nothing_is_drawn_before_there_is_progress_and_close_adds_no_empty_line():
    display = FakeDisplay()
    progress = ProgressLine(display, "  host", lambda: 80)
    progress.update(1, None)
    progress.close()
    assert display.screen == "" and display.log == [] and progress.changes == []


def test_fit_keeps_a_line_on_one_row():
    assert fit("step 1/3\nlease i-1", 80) == "step 1/3 lease i-1"
    assert fit("x" * 100, 20) == "x" * 18 + "\u2026"


def test_terminal_width_only_of_a_terminal(tmp_path):
    controller, terminal = pty.openpty()
    read, write = os.pipe()
    try:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 123, 0, 0))
        assert terminal_width(f"/proc/self/fd/{terminal}") == 123
        assert terminal_width(f"/proc/self/fd/{write}") is None
    finally:
        for fd in (controller, terminal, read, write):
            os.close(fd)
    (tmp_path / "log").write_text("")
    assert terminal_width(str(tmp_path / "log")) is None
    assert terminal_width("/dev/null") is None
    assert terminal_width(str(tmp_path / "missing")) is None


def test_the_controller_width_is_that_of_the_parent_process_stdout(tmp_path, monkeypatch):
    controller, terminal = pty.openpty()
    try:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 123, 0, 0))
        (tmp_path / "self" / "fd").mkdir(parents=True)
        (tmp_path / str(os.getppid()) / "fd").mkdir(parents=True)
        (tmp_path / str(os.getppid()) / "fd" / "1").symlink_to(f"/proc/self/fd/{terminal}")
        monkeypatch.setattr(wait_until, "PROC", str(tmp_path))
        monkeypatch.setenv("TERM", "xterm")
        assert wait_until.controller_width() == 123
        monkeypatch.setenv("TERM", "dumb")
        assert wait_until.controller_width() is None
        # ansible-runner's pseudo-terminal is a log's, not a person's screen.
        monkeypatch.setenv("TERM", "xterm")
        monkeypatch.setenv("RUNNER_OMIT_EVENTS", "False")
        assert wait_until.controller_width() is None
    finally:
        os.close(controller)
        os.close(terminal)


def test_without_proc_the_controller_width_follows_its_colour_verdict(tmp_path, monkeypatch):
    monkeypatch.setattr(wait_until, "PROC", str(tmp_path / "none"))
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(wait_until.Display(), "columns", 99)
    for colour, forced, width in ((True, False, 100), (False, False, None), (True, True, None)):
        monkeypatch.setattr(wait_until.color, "ANSIBLE_COLOR", colour)
        monkeypatch.setattr(wait_until.C, "ANSIBLE_FORCE_COLOR", forced)
        assert wait_until.controller_width() == width


def playbook(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """A play whose first wait sees `step 1 of 2` twice, then `step 2 of 2` twice (a counter file), a
    message, then a wait that gives up."""
    counter = tmp_path / "counter"
    count = 'n=$(( $(cat "$1" 2>/dev/null || echo 0) + 1 )); echo $n > "$1"; echo $n'
    play = [{"name": "Wait", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Count to four", "spotfirst.finetune.wait_until": {
            "module": "ansible.builtin.command", "module_args": {"argv": ["sh", "-c", count, "sh", str(counter)]},
            "until": "result.stdout | int >= 4", "progress": "'step %s of 2' % ((result.stdout | int + 1) // 2)",
            "delay": 0.1}},
        {"name": "Say", "ansible.builtin.debug": {"msg": "after the wait"}},
        {"name": "Give up", "spotfirst.finetune.wait_until": {
            "module": "ansible.builtin.command", "module_args": {"argv": ["echo", "still"]},
            "until": "false", "progress": "result.stdout", "what": "the impossible", "timeout": 0.5, "delay": 0.2}},
    ]}]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK":
           "spotfirst.finetune.brief", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0", "TERM": "xterm"}
    return [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e",
            f"ansible_python_interpreter={sys.executable}", str(path)], env


def on_terminal(argv: list[str], env: dict[str, str], columns: int = 100, timeout: float = 120) -> tuple[int, str]:
    """Run `argv` with its stdout and stderr on a pseudo-terminal `columns` wide: its exit status and all
    it wrote there (newlines as the terminal sends them, \\r\\n)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    run = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal, env=env, cwd=ROOT)
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([controller], [], [], 1)[0]:
                continue
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the last process that had the terminal closed it
                break
            if not data:
                break
            output += data
        return run.wait(timeout=max(1.0, deadline - time.monotonic())), output.decode()
    finally:
        os.close(controller)
        if run.poll() is None:
            run.kill()


PROGRESS = re.compile(r"  localhost \[\d+s\] (.*)")


def test_a_play_on_a_terminal_redraws_one_line_per_wait(tmp_path):
    argv, env = playbook(tmp_path)
    status, output = on_terminal(argv, env)
    assert status == 2, output
    rows = shown(output)
    start = rows.index("== Wait")
    assert [PROGRESS.sub(r"\1", row) for row in rows[start + 1:start + 5]] == [
        "step 2 of 2", "  -- Say", "    after the wait", "still"]
    assert rows[start + 5:start + 7] == ["", rows[start + 6]] and rows[start + 6].startswith("TASK [Give up]")
    assert any(row.startswith("fatal: [localhost]: FAILED!") for row in rows)
    assert re.search(r"Gave up after \d+s waiting for the impossible; last seen: still", output)
    # Four polls, four redraws of the first wait's line.
    assert len(re.findall(r"\r  localhost \[\d+s\] step \d of 2", output)) == 4


def test_a_play_elsewhere_prints_a_line_per_change(tmp_path):
    argv, env = playbook(tmp_path)
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    start = lines.index("== Wait")
    assert [PROGRESS.sub(r"\1", line) for line in lines[start + 1:start + 6]] == [
        "step 1 of 2", "step 2 of 2", "  -- Say", "    after the wait", "still"]
    assert "\r" not in run.stdout


def screen(monkeypatch, in_place: bool | None, batch: list[str], run_once: bool = False, verbosity: int = 0,
           width: int | None = 100) -> Any:
    """What ActionModule._screen decides: None for a line per change, else what gives the width."""
    monkeypatch.setattr(wait_until, "controller_width", lambda: width)
    action = wait_until.ActionModule.__new__(wait_until.ActionModule)
    action._task = SimpleNamespace(run_once=run_once)
    action._display = SimpleNamespace(verbosity=verbosity)
    return action._screen(in_place, {"ansible_play_batch": batch})


def test_left_to_itself_a_wait_redraws_only_on_a_terminal_it_has_alone(monkeypatch):
    assert screen(monkeypatch, None, ["localhost"]) is not None
    assert screen(monkeypatch, None, ["localhost"], width=None) is None
    assert screen(monkeypatch, None, ["a", "b"]) is None
    assert screen(monkeypatch, None, ["a", "b"], run_once=True) is not None
    assert screen(monkeypatch, None, ["localhost"], verbosity=2) is None
    assert screen(monkeypatch, None, ["localhost"], verbosity=1) is not None


def test_in_place_says_so_either_way(monkeypatch):
    assert screen(monkeypatch, True, ["a", "b"], width=None) is not None
    assert screen(monkeypatch, False, ["localhost"]) is None
