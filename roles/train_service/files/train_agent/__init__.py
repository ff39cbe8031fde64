"""The training agent: the recipe's /root/train.sh made robust.

Started at boot by train.service (`python -m train_agent`, with the directory that holds this package on
PYTHONPATH), after the bucket is mounted:

1. Training complete (the agent's completion marker is there, or the last line of logging.jsonl
   names `last_model_checkpoint` *and* that checkpoint's trainer state reached `max_steps`: a
   graceful stop writes the same line): exit 0 and do nothing else.
2. Otherwise pick the newest *valid* checkpoint by global step (not by mtime). A checkpoint is valid
   when trainer_state.json parses and its global_step matches the directory, the weights, optimizer
   and scheduler files are complete (format checks; loaded with torch/safetensors when importable)
   and the manifest this agent writes after each save (sizes and sha256) matches. Invalid ones are
   skipped and logged.
3. Run `swift sft` with the configured arguments, `--resume_from_checkpoint` when there is a
   checkpoint, with the argument names of the installed ms-swift (3.x `--train_type`, 4.x
   `--tuner_type`). While it runs, every finished checkpoint gets its manifest.
4. Stop gracefully on a spot reclaim notice (the metadata service's
   `instance/spot/termination-time`), on SIGTERM (`systemctl stop`, a shutdown) or SIGINT: ms-swift 4's
   `graceful_exit` callback saves a checkpoint at the end of the step in progress and stops; the agent
   writes its manifest, checks it and exits 0 without marking training complete.
5. Log to /root/train-service-log/train.log and train_error.log (as the recipe does) and to
   stdout/stderr, which systemd sends to the journal.
6. When training is complete, or has failed more often in a row than `failure_limit` allows: report a
   CloudMonitor custom event (and POST the same to a webhook, if one is set) and set the scaling
   group's desired capacity to 0, so that nothing is paid for an instance that no longer trains.

Standard library only: it runs with the system python3 or the training environment's python. The
modules, each with one job:

- `protocol`: the names the agent shares with the controller (a link to the collection's
  module_utils/training_protocol.py, installed as a file).
- `config`: the configuration the role writes; `logs`: the logger and the log files.
- `completion`: whether training is complete; `checkpoints`: choosing, checking and writing the
  manifests of checkpoints.
- `swift`: the `swift sft` command line and the running trainer; `plugin/`: its ms-swift plugin.
- `events`: the pollers and the event log; `stopping`: the stop latch, the stop's way to the trainer,
  the handover to a successor, and the watchers that ask for a stop.
- `cloud`: the standard-library client of the cloud (metadata, OSS, RPC APIs, one retry policy);
  `instance`: the instance the agent runs on; `lease`: one trainer per output directory.
- `ending`: reporting the end and stopping the bill; `run`: one start, from the command line.

Importing the package imports none of them: the trainer's plugin imports `train_agent.protocol` alone.
"""
