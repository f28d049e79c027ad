"""The payload codec: every payload that crosses Temporal is encrypted (AES-256-GCM).

Temporal's history, visibility memo and the Web UI then hold ciphertext only: identities,
ExternalIds and activation codes are readable by the workers and the API, which hold the keys, not
by whoever reads the database or reaches the frontend. Failure messages and stack traces are
moved into an encoded payload too (``DefaultFailureConverterWithEncodedAttributes``).

Keys rotate through a key ring: the first key encrypts, every key decrypts. Each encrypted payload
names the id of its key in its metadata, so adding a new key first and keeping the old ones until
their histories are gone is a rotation. A key id is derived from the key itself (no id to keep in
sync); a payload under an unknown key id, or altered, fails to decode (fail closed). Payloads that
carry no encryption metadata (written before the codec was on) are passed through unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecError(ValueError):
    """A payload cannot be decrypted (unknown key id, altered, truncated) or no key is set."""


def key_id(secret: str) -> str:
    """A short public name of a key, derived from it (never reveals it)."""
    return "k" + hashlib.sha256(b"fleetpatch codec key id\x00" + secret.encode()).hexdigest()[:16]


def _aes_key(secret: str) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"fleetpatch payload codec v1").derive(secret.encode())
    return AESGCM(derived)


class EncryptionCodec(PayloadCodec):
    """Encrypts with the ring's first key; decrypts with whichever key the payload names."""

    def __init__(self, ring: Sequence[str]) -> None:
        if not ring:
            raise CodecError("the payload codec needs at least one key")
        self._keys = {key_id(secret): _aes_key(secret) for secret in ring}
        self.current = key_id(ring[0])

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.current].encrypt(nonce, payload.SerializeToString(),
                                                  self.current.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self.current.encode()},
                       data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        name = payload.metadata.get(KEY_ID, b"").decode("ascii", "replace")
        key = self._keys.get(name)
        if key is None:
            raise CodecError(f"payload encrypted with key {name!r}, which is not in the key ring")
        try:
            plain = key.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], name.encode())
        except (InvalidTag, ValueError):
            raise CodecError(f"payload under key {name!r} is altered or truncated") from None
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The data converter of every fleetpatch client and worker."""
    if codec is None:
        return DataConverter.default
    return dataclasses.replace(
        DataConverter.default,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
