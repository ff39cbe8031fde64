"""The training agent's ms-swift 4 plugin (`--external_plugins`): three trainer callbacks.

ms-swift loads this file by its path, with this directory first on the trainer's sys.path (a directory of
its own, so that the agent's modules shadow nothing there). It is loaded where the agent set no
PYTHONPATH too: a checkpoint's args.json names it, and `swift infer --adapters <checkpoint>` (infer.yml)
loads it again. So it finds the `train_agent` package from its own place (two directories up), added
at the end of sys.path, and imports the protocol's names from there.

- `train_agent_clock`: prints a line with the trainer's own time at the end of every step and after
  every save (`train-agent-clock: step 7 at 1764598800.123`). The agent copies them into its event
  log on the bucket, from which chaos.yml tells how long a handover left training idle and whether
  two instances ever trained at once.
- `train_agent_handover`: the training agent starts `swift sft` before it holds the training lease,
  so that the model and the datasets load while the instance it replaces trains on and then saves.
  This callback blocks at the end of the trainer's construction, after printing READY_MARK (the
  agent then tells the lease holder that a successor is loaded), until the agent writes the go file
  named by TRAIN_AGENT_GO_FILE: `{"resume_from": "<checkpoint>" | null}`. It then sets
  `resume_from_checkpoint`, which ms-swift reads when training begins
  (`SwiftSft._get_resume_checkpoint`), and training resumes at once.
- `train_agent_stop`: when the trainer ends at the save the agent asked for (ms-swift's stop file, read
  by `graceful_exit`) before its last step, the process exits there. What ms-swift does after a
  training ends (its loss plots, the summary line of logging.jsonl, the interpreter's teardown) is for
  a training that is over; here the next trainer waits for this one to be gone before it takes over, and
  that took 2-5 s of each handover. Listed after the reporting callbacks, so TensorBoard's writer is
  closed by then; a training that reaches its last step ends as ms-swift ends it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from swift.callbacks.base import TrainerCallback
from swift.callbacks.mapping import callbacks_map

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
if PACKAGE_ROOT not in sys.path:
    sys.path.append(PACKAGE_ROOT)
from train_agent.protocol import CLOCK_MARK, GO_FILE_ENV, READY_MARK, STOP_MARK, SWIFT_STOP_FILE  # noqa: E402


class Clock(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        print(f"{CLOCK_MARK} step {state.global_step} at {time.time():.3f}", flush=True)
        return control

    def on_save(self, args, state, control, **kwargs):
        print(f"{CLOCK_MARK} save {state.global_step} at {time.time():.3f}", flush=True)
        return control


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


class ExitAtStop(TrainerCallback):
    def on_train_end(self, args, state, control, **kwargs):
        if os.path.exists(SWIFT_STOP_FILE) and state.max_steps and state.global_step < state.max_steps:
            print(f"{STOP_MARK} saved step {state.global_step} as asked; the trainer exits", flush=True)
            os._exit(0)
        return control


callbacks_map["train_agent_clock"] = Clock
callbacks_map["train_agent_stop"] = ExitAtStop
callbacks_map["train_agent_handover"] = WaitForGo
