"""Resource identifiers in Alibaba's formats (`i-bp1...`, `vpc-bp1...`, `asg-bp1...`)."""

from __future__ import annotations

import secrets
import string
import uuid

_ALPHABET = string.ascii_lowercase + string.digits

# Alibaba ids in cn-hangzhou start with "bp" after the prefix; other regions use other letters.
_REGION_TAG = {"cn-hangzhou": "bp", "cn-shanghai": "uf", "cn-beijing": "2z"}


def new_id(prefix: str, region: str = "cn-hangzhou", length: int = 20) -> str:
    tag = _REGION_TAG.get(region, "lc")
    body = "".join(secrets.choice(_ALPHABET) for _ in range(length - len(tag)))
    return f"{prefix}-{tag}{body}"


def request_id() -> str:
    return str(uuid.uuid4()).upper()


def access_key_id(prefix: str = "LTAI") -> str:
    return prefix + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(20))


def secret(length: int = 30) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


def account_uid() -> str:
    return "1" + "".join(secrets.choice(string.digits) for _ in range(15))
