"""The agent's configuration: what the train_service role writes to /etc/train-agent/config.json, and the
error a user must fix (`AgentError`)."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cloud import METADATA_URL
from .protocol import LOG_DIR

DEFAULT_CONFIG = Path("/etc/train-agent/config.json")


class AgentError(Exception):
    """A problem the operator must fix; the message says what and how."""


@dataclass
class Config:
    """What the role writes to /etc/train-agent/config.json."""

    output_dir: Path
    swift: str = "swift"
    python: str = sys.executable
    log_dir: Path = Path(LOG_DIR)
    swift_version: str = "auto"
    # swift sft arguments in order, canonical (ms-swift 4) names; None leaves an argument out.
    arguments: dict[str, Any] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # The dtype used on hosts without a CUDA GPU (bf16 training is a GPU feature).
    cpu_torch_dtype: str | None = "float32"
    require_manifest: bool = False
    load_with_torch: bool = True
    manifest_interval: float = 5.0
    # How often the spot reclaim notice is polled (seconds; 0 does not watch it).
    notice_poll_interval: float = 2.0
    metadata_url: str = METADATA_URL
    # One trainer per output directory (lease.Lease): the lease object's bucket and key, the
    # bucket's endpoint, and where the instance reaches the RPC APIs. No bucket, no lease.
    lease_bucket: str | None = None
    lease_key: str = "output/.train-lease"
    oss_endpoint: str | None = None
    api_endpoint: str = "https://{product}-vpc.{region}.aliyuncs.com"
    lease_expiry: float = 60.0
    lease_heartbeat: float = 10.0
    # How often the agent looks whether its scaling group is removing it (0 does not look).
    scale_in_poll_interval: float = 5.0
    # After a notice or a scale-in, train on for at most this long (seconds) until a successor has
    # loaded, then save and hand over (0: save and stop at once).
    handover_wait: float = 120.0
    # How soon a new event is written to the bucket (seconds): what an instance that is killed has not
    # written yet is missing from its log.
    event_log_interval: float = 0.5
    # When training ends (complete, or given up after `failure_limit` failed starts in a row): the
    # CloudMonitor custom event's name (None reports none), a webhook that takes a JSON POST (a
    # DingTalk robot), and whether the scaling group is set to 0 instances.
    event_name: str | None = "train-service"
    notify_webhook: str | None = None
    scale_to_zero: bool = True
    failure_limit: int = 3
    # Where the agent keeps what outlives one start on this instance (the failed starts in a row).
    state_dir: Path = Path("/var/lib/train-agent")
    # An instance with this tag (key=value) does not train: one launched from the training image for
    # something else (infer.yml's).
    no_training_tag: str | None = "train-agent=off"

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise AgentError(f"no configuration at {path}; apply the train_service role or pass --config") from exc
        except json.JSONDecodeError as exc:
            raise AgentError(f"{path} is not valid JSON ({exc}); re-apply the train_service role") from exc
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise AgentError(f"{path}: unknown settings {', '.join(unknown)}")
        if "output_dir" not in raw:
            raise AgentError(f"{path}: output_dir is required")
        raw["output_dir"] = Path(raw["output_dir"])
        for name in ("log_dir", "state_dir"):
            if name in raw:
                raw[name] = Path(raw[name])
        return cls(**raw)
