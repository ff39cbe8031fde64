"""spotfirst.finetune.wait_until: run a module until a condition holds, showing its progress as it changes
(the documentation is plugins/modules/wait_until.py)."""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import termios
import time
from collections.abc import Callable
from typing import Any

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.executor.module_common import _apply_action_arg_defaults
from ansible.plugins.action import ActionBase
from ansible.utils import color
from ansible.utils.display import Display

# Evaluated at every poll with `result` (the module's result), not templated once before the wait.
EXPRESSIONS = ("until", "progress")
# Where the controller's stdout is found (Linux).
PROC = "/proc"
# Set by ansible-runner (and so by AWX and the tests' playbook runs) in the playbook's environment: it runs
# ansible-playbook on a pseudo-terminal of its own and keeps what is printed for a log or a UI, where a line
# redrawn in place is a run of carriage returns.
CAPTURED_BY = ("AWX_ISOLATED_DATA_DIR", "RUNNER_OMIT_EVENTS")


def native(value: Any) -> Any:
    """A template result as plain data for a module result (lists and dicts of Ansible's lazy types)."""
    if isinstance(value, dict):
        return {str(k): native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [native(v) for v in value]
    return value


def terminal_width(path: str) -> int | None:
    """The columns of the terminal at `path`, or None when it is no terminal (a pipe, a file, /dev/null)."""
    try:
        if not stat.S_ISCHR(os.stat(path).st_mode):
            return None
        # O_NOCTTY: the worker has no controlling terminal (its own session); opening one must not give it one.
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not os.isatty(fd):
            return None
        try:
            return struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8)))[1] or 80
        except OSError:
            return 80
    finally:
        os.close(fd)


def controller_width() -> int | None:
    """The columns of the screen ansible-playbook prints on when that is a terminal, else None.

    An action runs in a worker process whose stdout ansible-core points at /dev/null
    (WorkerProcess._detach) and whose display calls the controller process, the worker's parent, prints:
    the controller's stdout is the one that counts."""
    if os.environ.get("TERM") == "dumb" or any(name in os.environ for name in CAPTURED_BY):
        return None
    if os.path.isdir(f"{PROC}/self/fd"):
        return terminal_width(f"{PROC}/{os.getppid()}/fd/1")
    # No /proc (macOS): the controller decided at start-up whether to colour from its stdout being a
    # terminal, inherited by the fork, unless ANSIBLE_NOCOLOR or ANSIBLE_FORCE_COLOR decided instead.
    if color.ANSIBLE_COLOR and not C.ANSIBLE_FORCE_COLOR:
        return (Display().columns or 79) + 1
    return None


def fit(text: str, columns: int) -> str:
    """`text` on one row of a terminal `columns` wide, cut with an ellipsis; the last column stays free
    (a character there leaves some terminals about to wrap, and the next carriage return a row down)."""
    text = " ".join(text.splitlines())
    limit = max(columns - 1, 10)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


class ProgressLine:
    """What a wait shows of its progress (the text of its `progress` expression at each poll).

    On a terminal (`columns` gives its width): one line, drawn again at every poll (its clock ticks
    while the text holds) and finished with a newline by `close` before anything else prints.
    Elsewhere (`columns` None: a pipe, a file, CI): a line per change of the text, as a log reads it.
    The log file (log_path) gets a line per change either way. `show` is Display.display."""

    def __init__(self, show: Callable[..., None], prefix: str,
                 columns: Callable[[], int | None] | None = None) -> None:
        self._show = show
        self._prefix = prefix
        self._columns = columns
        self._drawn = 0  # the length of the line open on the terminal; 0: none is open
        self.changes: list[str] = []

    def update(self, waited: float, text: str | None) -> None:
        changed = text is not None and (not self.changes or text != self.changes[-1])
        if changed:
            self.changes.append(text)
        if not self.changes:
            return
        line = f"{self._prefix} [{waited:.0f}s] {self.changes[-1]}"
        if self._columns is None:
            if changed:
                self._show(line)
            return
        if changed:
            self._show(line, log_only=True)
        drawn = fit(line, self._columns() or 80)
        # A carriage return and the line, padded over what is left of a longer one before it.
        self._show("\r" + drawn.ljust(self._drawn), newline=False, screen_only=True)
        self._drawn = len(drawn)

    def close(self) -> None:
        if self._drawn:
            self._show("", screen_only=True)
            self._drawn = 0


class ActionModule(ActionBase):
    _requires_connection = True
    TRANSFERS_FILES = False

    @classmethod
    def finalize_task_arg(cls, name: str, value: Any, templar: Any, context: Any) -> Any:
        if name in EXPRESSIONS:
            return value
        return super().finalize_task_arg(name, value, templar, context)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=dict(
            module=dict(type="str", required=True),
            module_args=dict(type="dict", default={}),
            until=dict(type="str", required=True),
            progress=dict(type="str"),
            what=dict(type="str"),
            timeout=dict(type="float", default=600),
            delay=dict(type="float", default=3),
            in_place=dict(type="bool"),
        ))
        if args["timeout"] < 0 or args["delay"] <= 0:
            raise AnsibleActionFail(f"wait_until: timeout must be >= 0 and delay > 0 (got {args['timeout']} and "
                                    f"{args['delay']}).")
        module = self._shared_loader_obj.module_loader.find_plugin_with_context(
            args["module"], collection_list=self._task.collections)
        if not module.resolved:
            raise AnsibleActionFail(f"wait_until: no module named {args['module']!r}.")
        module_args = _apply_action_arg_defaults(module.resolved_fqcn, self._task, dict(args["module_args"]),
                                                 self._templar)
        what = args["what"] or f"{args['until']} ({module.resolved_fqcn})"
        progress = ProgressLine(self._display.display, f"  {task_vars.get('inventory_hostname', '')}",
                                self._screen(args["in_place"], task_vars))
        started = time.monotonic()
        polls = 0
        try:
            while True:
                polls += 1
                try:
                    result = self._execute_module(module_name=module.resolved_fqcn, module_args=module_args,
                                                  task_vars=task_vars)
                except AnsibleConnectionFailure as exc:  # not reachable yet: a poll that failed
                    result = {"unreachable": True, "msg": str(exc)}
                done, line = self._look(args, result)
                waited = round(time.monotonic() - started, 1)
                progress.update(waited, line)
                if done:
                    return {**result, "changed": False, "failed": False, "waited": waited,
                            "progress": progress.changes, "attempts": polls}
                if waited >= args["timeout"]:
                    seen = line if line is not None else result.get("msg", "nothing")
                    return {**result, "changed": False, "failed": True, "waited": waited,
                            "progress": progress.changes, "attempts": polls,
                            "msg": f"Gave up after {waited:.0f}s waiting for {what}; last seen: {seen}"}
                time.sleep(max(0.0, min(args["delay"], args["timeout"] - waited)))
        finally:
            progress.close()

    def _screen(self, in_place: bool | None, task_vars: dict[str, Any]) -> Callable[[], int | None] | None:
        """How wide the line redrawn in place may be, or None for a line per change. Left to itself
        (`in_place` omitted), a wait redraws only on a terminal where it has the screen alone: one host
        runs the task (several would redraw each other's line) and no -vv prints between the polls."""
        if in_place is None:
            alone = self._task.run_once or len(task_vars.get("ansible_play_batch") or ()) <= 1
            in_place = alone and self._display.verbosity < 2 and controller_width() is not None
        return controller_width if in_place else None

    def _look(self, args: dict[str, Any], result: dict[str, Any]) -> tuple[bool, str | None]:
        """(whether the wait is over, the progress line) for one poll's result. A poll that failed is not
        over (the module may succeed later: an instance not reachable yet, a log not written yet)."""
        local = {"result": native(result)}
        failed = bool(result.get("failed") or result.get("unreachable"))
        line = None
        if args["progress"]:
            try:
                line = str(self._templar.evaluate_expression(args["progress"], local_variables=local))
            except Exception as exc:  # a progress line that cannot be drawn from this result
                line = None if failed else f"({type(exc).__name__}: {exc})"
        if failed:
            return False, line if line is not None else " ".join(str(result.get("msg", "failed")).split())[:300]
        return bool(self._templar.evaluate_expression(args["until"], local_variables=local)), line
