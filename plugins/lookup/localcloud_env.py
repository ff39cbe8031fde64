from __future__ import annotations

DOCUMENTATION = r"""
name: localcloud_env
short_description: Read endpoints and credentials from localcloud's env file
description:
  - Returns values of the C(.localcloud/env) file that C(localcloud up) writes (C(export K=V)
    lines), so that inventory/local can point the alicloud_* modules at localcloud.
  - The file is C($LOCALCLOUD_HOME/env) when E(LOCALCLOUD_HOME) is set, otherwise the first
    C(.localcloud/env) found from the playbook's directory upwards.
options:
  _terms:
    description: Names of the variables to read (for example C(LOCALCLOUD_ENDPOINT)).
    required: true
  home:
    description: The localcloud state directory, instead of the search above.
    type: str
  default:
    description: Value for a name the file does not set (without it, such a name is an error).
    type: str
"""

EXAMPLES = r"""
- name: Show localcloud's RPC endpoint
  ansible.builtin.debug:
    msg: "{{ lookup('spotfirst.finetune.localcloud_env', 'LOCALCLOUD_ENDPOINT') }}"
"""

RETURN = r"""
_raw:
  description: The values, in the order asked.
  type: list
  elements: str
"""

import os  # noqa: E402
from pathlib import Path  # noqa: E402

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

MISSING = object()


def find_env_file(home: str | None, start: str) -> Path | None:
    if home:
        return Path(home) / "env"
    for directory in [Path(start).resolve(), *Path(start).resolve().parents]:
        candidate = directory / ".localcloud" / "env"
        if candidate.is_file():
            return candidate
    return None


def read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        home = self.get_option("home") or os.environ.get("LOCALCLOUD_HOME")
        start = self._loader.get_basedir() if self._loader else os.getcwd()
        path = find_env_file(home, start)
        if path is None or not path.is_file():
            raise AnsibleLookupError(
                f"localcloud's env file was not found ({path or '.localcloud/env above ' + start}); start localcloud "
                "with `.venv/bin/localcloud up` (or set LOCALCLOUD_HOME), or use another inventory "
                "(-i inventory/alicloud).")
        values = read_env(path)
        default = self.get_option("default")
        found = []
        for term in terms:
            value = values.get(term, MISSING)
            if value is MISSING:
                if default is None:
                    raise AnsibleLookupError(f"{path} does not set {term}.")
                value = default
            found.append(value)
        return found
