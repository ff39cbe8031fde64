"""An ms-swift 4 plugin (`--external_plugins`): the trainer waits, loaded, for the agent's go.

The training agent starts `swift sft` before it holds the training lease, so that the model and
the datasets load while the instance it replaces finishes its last save. This callback
(`--callbacks train_agent_handover`) blocks at the end of the trainer's construction until the
agent writes the go file named by TRAIN_AGENT_GO_FILE: `{"resume_from": "<checkpoint>" | null}`.
It then sets `resume_from_checkpoint`, which ms-swift reads when training begins
(`SwiftSft._get_resume_checkpoint`), and training resumes at once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from swift.callbacks.base import TrainerCallback
from swift.callbacks.mapping import callbacks_map

GO_FILE_ENV = "TRAIN_AGENT_GO_FILE"
READY_MARK = "train-agent-handover: loaded, waiting for the agent's go"


class WaitForGo(TrainerCallback):
    def on_init_end(self, args, state, control, **kwargs):
        go_file = os.environ.get(GO_FILE_ENV)
        if not go_file:
            return control
        print(READY_MARK, flush=True)
        path = Path(go_file)
        while not path.is_file():
            time.sleep(0.05)
        resume_from = json.loads(path.read_text()).get("resume_from")
        args.resume_from_checkpoint = resume_from
        print(f"train-agent-handover: go, resume_from_checkpoint={resume_from}", flush=True)
        return control


callbacks_map["train_agent_handover"] = WaitForGo
