"""The agent's logger and its log files: train.log and train_error.log (as the recipe's train.sh wrote
them) besides stdout and stderr, which systemd sends to the journal."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from .protocol import ERROR_LOG, TRAIN_LOG

LOG = logging.getLogger("train-agent")


def setup_logging(log_dir: Path) -> tuple[TextIO, TextIO]:
    """Log to the journal and the two files; the files, open for swift's own output."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_log = (log_dir / TRAIN_LOG).open("a", encoding="utf-8")
    err_log = (log_dir / ERROR_LOG).open("a", encoding="utf-8")
    formatter = logging.Formatter("%(asctime)s train-agent %(levelname)s %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout), logging.StreamHandler(out_log)]
    errors = logging.StreamHandler(err_log)
    errors.setLevel(logging.WARNING)
    handlers.append(errors)
    for handler in handlers:
        handler.setFormatter(formatter)
        LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    return out_log, err_log
