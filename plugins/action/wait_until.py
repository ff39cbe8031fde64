"""spotfirst.finetune.wait_until: run a module until a condition holds, printing a line when its progress
changes (the documentation is plugins/modules/wait_until.py)."""

from __future__ import annotations

import time
from typing import Any

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure
from ansible.executor.module_common import _apply_action_arg_defaults
from ansible.plugins.action import ActionBase

# Evaluated at every poll with `result` (the module's result), not templated once before the wait.
EXPRESSIONS = ("until", "progress")


def native(value: Any) -> Any:
    """A template result as plain data for a module result (lists and dicts of Ansible's lazy types)."""
    if isinstance(value, dict):
        return {str(k): native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [native(v) for v in value]
    return value


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
        host = task_vars.get("inventory_hostname", "")
        started = time.monotonic()
        lines: list[str] = []
        polls = 0
        while True:
            polls += 1
            try:
                result = self._execute_module(module_name=module.resolved_fqcn, module_args=module_args,
                                              task_vars=task_vars)
            except AnsibleConnectionFailure as exc:  # not reachable yet: a poll that failed
                result = {"unreachable": True, "msg": str(exc)}
            done, line = self._look(args, result)
            waited = round(time.monotonic() - started, 1)
            if line is not None and (not lines or line != lines[-1]):
                lines.append(line)
                self._display.display(f"  {host} [{waited:.0f}s] {line}")
            if done:
                return {**result, "changed": False, "failed": False, "waited": waited, "progress": lines,
                        "attempts": polls}
            if waited >= args["timeout"]:
                seen = line if line is not None else result.get("msg", "nothing")
                return {**result, "changed": False, "failed": True, "waited": waited, "progress": lines,
                        "attempts": polls, "msg": f"Gave up after {waited:.0f}s waiting for {what}; last seen: {seen}"}
            time.sleep(max(0.0, min(args["delay"], args["timeout"] - waited)))

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
