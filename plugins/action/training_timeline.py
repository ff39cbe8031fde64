"""spotfirst.finetune.training_timeline: draw a training's timeline to a PNG on the controller with
matplotlib (the documentation is plugins/modules/training_timeline.py)."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

COLOURS = {"spot": "#2e8b57", "pay-as-you-go": "#e07b39"}
OTHER = "#888888"


def axis_label(data: dict[str, Any]) -> str:
    if data.get("clock") == "virtual":
        return (f"hours since the first training instance, localcloud's virtual clock "
                f"(x{data.get('time_scale', 1):g} real time)")
    return "hours since the first training instance (wall clock)"


def draw(data: dict[str, Any], path: str, title: str) -> None:
    """The timeline of `data` (module_utils/timeline.py's timeline_data) as a PNG at `path`."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.patches import Patch

    origin = float(data.get("origin") or 0.0)

    def hours(t: float) -> float:
        return (float(t) - origin) / 3600

    bars = data.get("bars", [])
    figure, (lanes, progress, cost) = pyplot.subplots(
        3, 1, sharex=True, figsize=(10, 3.2 + 0.32 * len(bars)), dpi=80,
        gridspec_kw={"height_ratios": [max(1.2, 0.45 * len(bars)), 1.4, 1.4]})
    for row, bar in enumerate(bars):
        lanes.barh(row, hours(bar["end"]) - hours(bar["start"]), left=hours(bar["start"]), height=0.6,
                   color=COLOURS.get(bar["charge"], OTHER), edgecolor="black", linewidth=0.4)
        lanes.text(hours(bar["start"]), row, f" {bar['instance_id'][-8:]} {bar.get('zone') or ''}",
                   va="center", ha="left", fontsize=7)
    lanes.set_yticks([])
    lanes.set_ylim(len(bars) - 0.4, -0.6)
    lanes.set_ylabel("instances")
    lanes.legend(handles=[Patch(color=c, label=k) for k, c in COLOURS.items()], loc="upper right", fontsize=7)
    steps = data.get("steps", [])
    progress.plot([hours(s["time"]) for s in steps], [s["step"] for s in steps], ".", markersize=2, color="#3465a4")
    progress.set_ylabel("step")
    points = data.get("cost", [])
    cost.plot([hours(p["time"]) for p in points], [p["cost"] for p in points], color="#2e8b57", label="paid")
    cost.plot([hours(p["time"]) for p in points], [p["all_pay_as_you_go"] for p in points], "--", color="#e07b39",
              label="all pay-as-you-go")
    cost.set_ylabel("RMB")
    cost.legend(loc="upper left", fontsize=7)
    cost.set_xlabel(axis_label(data))
    marks = data.get("interruptions", [])
    for number, mark in enumerate(marks, 1):
        for axes in (lanes, progress, cost):
            axes.axvline(hours(mark["time"]), color="#cc0000", linewidth=0.8, linestyle=":")
        lanes.annotate(str(number), (hours(mark["time"]), 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                       color="#cc0000", xytext=(0, 2), textcoords="offset points", ha="center", va="bottom")
    lanes.set_title(title, fontsize=9, pad=12)
    caption = "   ".join(f"{number}. {mark['cause']}" for number, mark in enumerate(marks, 1))
    figure.tight_layout(rect=(0, 0.06 if caption else 0, 1, 1))
    if caption:
        figure.text(0.01, 0.01, "interruptions: " + caption, fontsize=7, color="#cc0000", ha="left", va="bottom",
                    wrap=True)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=".timeline-", suffix=".png", dir=directory)
    os.close(handle)
    try:
        figure.savefig(partial, format="png")
        os.chmod(partial, 0o644)
        os.replace(partial, path)  # a reader never sees half a picture
    finally:
        pyplot.close(figure)
        if os.path.exists(partial):
            os.unlink(partial)


class ActionModule(ActionBase):
    _requires_connection = False
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        super().run(tmp, task_vars or {})
        _, args = self.validate_argument_spec(argument_spec=dict(
            data=dict(type="dict", required=True),
            path=dict(type="path", required=True),
            title=dict(type="str", default="Training timeline"),
        ))
        data = args["data"]
        try:
            draw(data, args["path"], args["title"])
        except ImportError as err:
            raise AnsibleActionFail(f"training_timeline needs matplotlib on the controller ({err}): install the "
                                    "project's requirements.txt (make setup).") from None
        return {"changed": False, "path": args["path"], "bars": len(data.get("bars", [])),
                "interruptions": len(data.get("interruptions", [])), "steps": len(data.get("steps", []))}
