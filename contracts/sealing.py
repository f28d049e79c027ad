"""Sealed secrets: values that must pass through Temporal history without being readable there.

An SSM activation code is created on the aws worker and handed to the registering VM by the API;
in between it lives in workflow history (an activity result, an update result), which the
Temporal UI shows. The aws worker seals it with a key it shares with the API only (Fernet:
AES-128-CBC with an HMAC-SHA256, the key derived from ``FLEETPATCH_SEALING_KEY``); the API
unseals it for the one answer.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "sealed:v1:"


class SealingError(ValueError):
    pass


def _fernet(key: str) -> Fernet:
    if len(key) < 16:
        raise SealingError("the sealing key must be at least 16 characters")
    derived = hashlib.sha256(b"fleetpatch sealing v1\x00" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(key: str, value: str) -> str:
    return PREFIX + _fernet(key).encrypt(value.encode()).decode()


def unseal(key: str, sealed: str) -> str:
    if not sealed.startswith(PREFIX):
        raise SealingError("not a sealed value")
    try:
        return _fernet(key).decrypt(sealed[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise SealingError("sealed with another key, or altered") from None
