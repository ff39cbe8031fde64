# The demo's screen output: what changed, the messages and the waits' progress; failures in full.
from __future__ import annotations

DOCUMENTATION = """
    name: brief
    type: stdout
    short_description: One line per change, the messages and the waits' progress; failures in full
    description:
      - A line per play and a line per task that changed something (per item in a loop); the messages
        of C(debug) tasks; tasks that only looked and found everything in place, and skipped ones, print
        nothing. The progress of C(spotfirst.finetune.wait_until) comes as it happens (on a terminal one
        line redrawn in place per wait, elsewhere a line each time it changes).
      - Failures, unreachable hosts, warnings and the recap are printed as the default callback prints
        them, with the task's banner.
      - C(ANSIBLE_STDOUT_CALLBACK=spotfirst.finetune.brief ansible-playbook site.yml); C(make demo) uses it.
    extends_documentation_fragment:
      - default_callback
      - result_format_callback
    requirements:
      - set as the stdout callback
"""

from typing import Any  # noqa: E402

import yaml  # noqa: E402
from ansible import constants as C  # noqa: E402
from ansible.parsing.yaml.dumper import AnsibleDumper  # noqa: E402
from ansible.playbook.task_include import TaskInclude  # noqa: E402
from ansible.plugins.callback.default import CallbackModule as DefaultCallback  # noqa: E402

MESSAGES = ("debug", "ansible.builtin.debug", "ansible.legacy.debug")
QUIET = ("display_ok_hosts", "display_skipped_hosts")


class CallbackModule(DefaultCallback):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "spotfirst.finetune.brief"

    def get_option(self, k: str) -> Any:
        # The default callback prints a task's banner only with a result it shows: with these off,
        # only failures (and what this callback prints itself) bring one.
        if k in QUIET:
            return False
        return super().get_option(k)

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._play = play
        name = play.get_name().strip()
        self._display.display(f"\n== {name}" if name else "")

    def v2_playbook_on_include(self, included_file: Any) -> None:
        pass

    def _changed(self, result: Any, label: str | None = None) -> None:
        name = result.task.get_name().strip()
        self._display.display(f"  changed: {name}" + (f" ({label})" if label else ""), color=C.COLOR_CHANGED)

    def _message(self, result: Any) -> None:
        self._display.display(f"  -- {result.task.get_name().strip()}")
        shown = {k: v for k, v in result.result.items() if not k.startswith("_") and k not in ("changed", "failed")}
        message = shown.get("msg", shown)
        lines = message if isinstance(message, list) else [message]
        for line in lines:
            text = line if isinstance(line, str) else yaml.dump(line, Dumper=AnsibleDumper, default_flow_style=False,
                                                                 sort_keys=False, width=100)
            self._display.display("\n".join(f"    {part}" for part in str(text).rstrip().splitlines()) or "    ")

    def v2_runner_on_ok(self, result: Any) -> None:
        if isinstance(result.task, TaskInclude):
            return
        self._handle_warnings_and_exception(result)
        if result.task.action in MESSAGES:
            if not (result.task.loop and "results" in result.result):
                self._message(result)
        elif result.result.get("changed", False) and not (result.task.loop and "results" in result.result):
            self._changed(result)

    def v2_runner_item_on_ok(self, result: Any) -> None:
        if isinstance(result.task, TaskInclude):
            return
        self._handle_warnings_and_exception(result)
        if result.task.action in MESSAGES:
            self._message(result)
        elif result.result.get("changed", False):
            self._changed(result, self._get_item_label(result.result))
