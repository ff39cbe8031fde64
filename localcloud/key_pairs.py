"""SSH key pairs (ECS `KeyPair` records): the public keys ECS keeps, read as ECS reads them.

ECS takes the key types its ImportKeyPair documents (rsa, dsa, ecdsa and their OpenSSH certificates; not
ed25519), names of 2 to 128 characters that start with a letter, and gives each key an MD5 fingerprint in
RFC 4716's form (the SDK models: "The public key fingerprint format is defined in RFC 4716 and uses the
MD5 message digest algorithm"): the colon-separated hex digest of the key blob, `ssh-keygen -E md5 -l`
without its `MD5:`. A key pair bound to an instance cannot be deleted (DeleteKeyPairs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct

from .errors import ApiError
from .store import Kind, Store

KEY_PAIR = Kind("key_pair", "KeyPairName")
# ImportKeyPair's documented encryption methods (ssh-ed25519 is not among them).
KEY_TYPES = ("ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "ssh-rsa-cert-v00@openssh.com", "ssh-dss-cert-v00@openssh.com", "ssh-rsa-cert-v01@openssh.com",
             "ssh-dss-cert-v01@openssh.com", "ecdsa-sha2-nistp256-cert-v01@openssh.com",
             "ecdsa-sha2-nistp384-cert-v01@openssh.com", "ecdsa-sha2-nistp521-cert-v01@openssh.com")
MAX_PER_REGION = 500
_NAME = re.compile(r"^[A-Za-z\u4e00-\u9fa5][\w\u4e00-\u9fa5:.\-]{1,127}$")


def check_name(name: str | None) -> str:
    if not name or not _NAME.match(name) or name.startswith(("http://", "https://")):
        raise ApiError("InvalidKeyPairName.Malformed", "Specified Key Pair name is not valid.")
    return name


def parse_public_key(body: str | None) -> tuple[str, bytes]:
    """(type, blob) of an OpenSSH public key line (`ssh-rsa AAAA... comment`), for the types ECS takes."""
    if not body:
        raise ApiError("MissingParameter", 'The input parameter "PublicKeyBody" that is mandatory for processing '
                       "this request is not supplied.")
    unsupported = ApiError("InvalidPublicKeyBody.Malformed", "The PublicKeyBody format is not supported.")
    fields = body.strip().split()
    if len(fields) < 2 or fields[0] not in KEY_TYPES:
        raise unsupported
    try:
        blob = base64.b64decode(fields[1], validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        declared = blob[4:4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        raise unsupported from None
    if declared != fields[0]:
        raise unsupported
    return fields[0], blob


def fingerprint(blob: bytes) -> str:
    """RFC 4716's fingerprint: the MD5 digest of the key blob, colon-separated hex."""
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def check_launch(store: Store, name: str | None, message: str) -> str:
    """The KeyPairName an instance is launched with: empty, or a key pair that exists (else 404
    InvalidKeyPairName.NotFound, with ECS's or ESS's message)."""
    if not name:
        return ""
    if KEY_PAIR.find(store, name) is None:
        raise ApiError("InvalidKeyPairName.NotFound", message, 404)
    return name


def public_key(store: Store, name: str) -> str | None:
    """The public key an instance launched with key pair `name` gets for root (None: no such key pair now)."""
    found = KEY_PAIR.find(store, name) if name else None
    return found["PublicKey"] if found else None
