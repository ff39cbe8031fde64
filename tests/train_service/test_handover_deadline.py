"""A handover is over before the notice or the scale-in hook runs out: the wait for a successor ends when the
time left is what a stop takes here (the trainer's recent steps and saves, the manifests), measured from the
trainer's own clock lines; a hook's wait is extended where the group allows it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from train_agent.cloud import CloudError
from train_agent.events import EventLog
from train_agent.pace import FACTOR, FIXED, UNMEASURED_SAVE, Deadline, SavePace, termination_deadline
from train_agent.protocol import CLOCK_MARK
from train_agent.stopping import GracefulStop, Handover, ScaleInWatcher, TrainerStop


def test_the_pace_is_the_longest_recent_step_save_and_manifest_with_a_margin() -> None:
    pace = SavePace()
    assert pace.stop_seconds() == FACTOR * UNMEASURED_SAVE + FIXED  # nothing measured: a save is taken to cost 30 s
    for step, when in ((1, 100.0), (2, 102.0), (3, 104.5)):
        pace.observe("step", step, when)
    pace.observe("save", 3, 108.5)  # a save of 4 s
    pace.observe("step", 4, 110.5)  # 2 s after the save: the save is not counted as a step
    pace.manifest_written(1.0)
    assert pace.stop_seconds() == pytest.approx(FACTOR * (2.5 + 4.0 + 1.0) + FIXED)
    assert pace.describe() == "step 2.5s, save 4.0s, manifest 1.0s"


def test_the_event_log_feeds_the_pace_from_the_trainers_clock_lines(tmp_path: Path) -> None:
    events = EventLog(tmp_path / "events.jsonl", 0)
    for line in (f"{CLOCK_MARK} step 5 at 1000.0", f"{CLOCK_MARK} save 5 at 1003.0", f"{CLOCK_MARK} step 6 at 1004.0"):
        events.watch(line + "\n")
    assert events.pace.describe() == "step 1.0s, save 3.0s, no manifest yet"


def test_the_termination_time_is_read_as_ecs_writes_it() -> None:
    deadline = termination_deadline("2026-12-01T15:00:00Z\n")
    assert deadline is not None and deadline.ends_at == 1796137200.0
    assert termination_deadline("in five minutes") is None  # the wait is bounded by handover_wait alone


def waiting_handover(tmp_path: Path, wait: float = 60.0) -> tuple[Handover, GracefulStop, list[float]]:
    """A handover whose trainer trains with the lease and no successor comes; the pace: steps of 1 s, saves of
    2 s (a stop takes 1.5 x 3 + 5 = 9.5 s). The list gets the moment the stop is asked for."""
    stop = GracefulStop()
    handover = Handover(stop, TrainerStop(stop, stop_file=tmp_path / "stop"), EventLog(tmp_path / "ev.jsonl", 0), wait)
    handover.successor = lambda: None
    for line in (f"{CLOCK_MARK} step 1 at 10.0", f"{CLOCK_MARK} save 1 at 12.0", f"{CLOCK_MARK} step 2 at 13.0"):
        handover.events.watch(line + "\n")
    asked: list[float] = []
    threading.Thread(target=lambda: stop.wait() and asked.append(time.time()), daemon=True).start()
    return handover, stop, asked


def test_a_notice_shorter_than_the_wait_stops_when_a_stop_still_fits(tmp_path: Path) -> None:
    handover, stop, asked = waiting_handover(tmp_path)
    noticed = time.time()
    handover.request("spot reclaim notice", after_handover=True, deadline=Deadline(noticed + 12.0, "the reclaim"))
    assert stop.wait(10)
    time.sleep(0.1)
    # 12 s of notice and 9.5 s to stop: asked for 2.5 s in (a loaded machine may be late), not after the 60 s
    # wait, and not at once.
    assert 2.0 <= asked[0] - noticed <= 6.0
    assert (tmp_path / "stop").exists()


def test_a_notice_with_less_time_than_a_stop_takes_stops_at_once(tmp_path: Path) -> None:
    handover, stop, _asked = waiting_handover(tmp_path)
    handover.request("spot reclaim notice", after_handover=True, deadline=Deadline(time.time() + 5.0, "the reclaim"))
    assert stop.wait(5)


def test_a_long_notice_waits_for_the_successor_as_before(tmp_path: Path) -> None:
    handover, stop, _asked = waiting_handover(tmp_path, wait=1.0)
    handover.request("spot reclaim notice", after_handover=True, deadline=Deadline(time.time() + 600, "the reclaim"))
    assert not stop.wait(0.5)
    assert stop.wait(5)  # the wait's own bound


def test_a_second_reason_with_less_time_shortens_the_wait(tmp_path: Path) -> None:
    handover, stop, _asked = waiting_handover(tmp_path)
    handover.request("scale-in", after_handover=True, deadline=Deadline(time.time() + 600, "the hook"))
    assert not stop.wait(0.5)
    handover.request("spot reclaim notice", after_handover=True, deadline=Deadline(time.time() + 9.0, "the reclaim"))
    assert stop.wait(5)
    assert stop.reason == "scale-in"


def test_a_deadline_that_can_be_moved_is_asked_for_the_rest_of_the_wait(tmp_path: Path) -> None:
    handover, stop, _asked = waiting_handover(tmp_path, wait=3.0)
    wanted: list[float] = []

    def extend(seconds: float) -> float:
        wanted.append(seconds)
        return time.time() + seconds

    handover.request("scale-in", after_handover=True, deadline=Deadline(time.time() + 9.0, "the hook", extend))
    assert not stop.wait(1.5)  # the hook would leave no time: it was extended instead
    assert stop.wait(6)  # then the wait's bound
    assert len(wanted) == 1 and 9.5 + 2.0 <= wanted[0] <= 9.5 + 3.0


def test_a_deadline_the_group_will_not_move_stops_the_wait(tmp_path: Path) -> None:
    handover, stop, _asked = waiting_handover(tmp_path)
    handover.request("scale-in", after_handover=True,
                     deadline=Deadline(time.time() + 9.0, "the hook", extend=lambda _seconds: None))
    assert stop.wait(5)


class HeldScaleIn:
    """ESS as far as a held instance's hook goes: one pending action, its hook's timeout, heartbeats."""

    group_id = "asg-1"

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.heartbeats: list[int] = []

    def waiting(self) -> bool:
        return True

    def hook_timeout(self) -> float:
        return 600.0

    def heartbeat(self, seconds: int) -> int:
        if self.refuse:
            raise CloudError(400, "LifecycleAction.TimeExceeded", "max suspend time")
        self.heartbeats.append(seconds)
        return 1


def test_a_scale_in_is_bounded_by_its_hooks_timeout_and_extended_within_esss_range(tmp_path: Path) -> None:
    stop = GracefulStop()
    handover = Handover(stop, TrainerStop(stop, stop_file=tmp_path / "stop"), EventLog(tmp_path / "ev.jsonl", 0), 60)
    handover.successor = lambda: None
    watcher = ScaleInWatcher(None, 5.0, handover)
    watcher.interval, watcher.scale_in = 5.0, HeldScaleIn()
    seen = time.time()
    assert watcher.poll() is True
    (deadline,) = handover._deadlines
    assert seen - 5.0 + 600 - 0.5 <= deadline.ends_at <= seen - 5.0 + 600 + 0.5  # the hold began a look ago
    assert deadline.extend is not None
    assert 0 < deadline.extend(12.2) - time.time() <= 30  # ESS's least heartbeatTimeout: 30 s
    assert watcher.scale_in.heartbeats == [30]
    assert deadline.extend(99999) is not None and watcher.scale_in.heartbeats[-1] == 21600
    watcher.scale_in = HeldScaleIn(refuse=True)
    assert deadline.extend(60) is None
    stop.request("done")
