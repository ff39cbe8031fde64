from __future__ import annotations

DOCUMENTATION = r"""
name: training_protocol
short_description: Read a name of the contract between the training agent and the playbooks
description:
  - Returns values of the collection's C(training_protocol) module_utils, the one definition of the
    files, objects and log lines the training agent writes and the playbooks read (its completion
    marker, its event log directory, its log file).
  - Names are the module's constants (for example C(COMPLETE_MARKER)); C(TRAIN_LOG_PATH) is the
    agent's C(train.log) on an instance.
options:
  _terms:
    description: Names of the constants to read.
    required: true
"""

EXAMPLES = r"""
- name: Show where the agent marks a training complete
  ansible.builtin.debug:
    msg: "{{ oss_output_prefix }}{{ lookup('spotfirst.finetune.training_protocol', 'COMPLETE_MARKER') }}"
"""

RETURN = r"""
_raw:
  description: The values, in the order asked.
  type: list
  elements: str
"""

import posixpath  # noqa: E402

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402
from ansible_collections.spotfirst.finetune.plugins.module_utils import training_protocol  # noqa: E402

DERIVED = {"TRAIN_LOG_PATH": posixpath.join(training_protocol.LOG_DIR, training_protocol.TRAIN_LOG)}


def value_of(name: str) -> str:
    if name in DERIVED:
        return DERIVED[name]
    value = getattr(training_protocol, name, None) if name.isupper() else None
    if not isinstance(value, str):
        names = sorted([*DERIVED, *(n for n in vars(training_protocol) if n.isupper()
                                    and isinstance(getattr(training_protocol, n), str))])
        raise AnsibleLookupError(f"the training protocol has no name {name!r}; it has {', '.join(names)}")
    return value


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [value_of(term) for term in terms]
