"""The final adapter of a training output and its tensors, read without torch."""

from __future__ import annotations

import json
import struct
from pathlib import Path


def read_safetensors(path: Path) -> dict[str, tuple[str, list[int], bytes]]:
    """Each tensor of a safetensors file as (dtype, shape, raw bytes): equal bytes, equal tensors.

    The format is an 8-byte little-endian header length, a JSON header and the data; reading it
    here keeps the test process free of torch (the training stack lives in its own venv).
    """
    data = path.read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_length])
    body = data[8 + header_length:]
    return {
        name: (info["dtype"], info["shape"], body[info["data_offsets"][0]:info["data_offsets"][1]])
        for name, info in header.items() if name != "__metadata__"
    }


def final_adapter(output: Path) -> Path:
    final = max(output.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return final / "adapter_model.safetensors"
