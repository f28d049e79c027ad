"""The local GCP cloud's token signing key and the JWKS that publishes it.

Generated once under ``DIR/gcp/`` and reused on restart, so tokens minted before a restart still
verify and ``DIR/gcp/jwks.json`` (for ``fleetpatch verify --jwks``) stays valid. The kid is the
SHA-1 of the public key (40 hex digits, the shape of Google's own kids).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KEY_FILE = "signing-key.pem"
JWKS_FILE = "jwks.json"
#: Where the local GCP cloud publishes the JWKS (Google's own path).
JWKS_PATH = "/oauth2/v3/certs"


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def from_private_key(cls, private_key: rsa.RSAPrivateKey) -> SigningKey:
        der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(private_key, hashlib.sha1(der).hexdigest())

    def jwk(self) -> dict[str, str]:
        """The public key as Google publishes its keys at ``/oauth2/v3/certs``."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def load_or_create(gcp_dir: Path) -> SigningKey:
    """The signing key kept in ``gcp_dir`` (created on first use, private: mode 0600), with the
    JWKS file written beside it."""
    gcp_dir.mkdir(parents=True, exist_ok=True)
    path = gcp_dir / KEY_FILE
    if path.exists():
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        key = SigningKey.from_private_key(loaded)
    else:
        key = SigningKey.from_private_key(rsa.generate_private_key(65537, 2048))
        pem = key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        os.replace(tmp, path)
    write_json_atomic(gcp_dir / JWKS_FILE, key.jwks())
    return key


def write_json_atomic(path: Path, document: Any) -> None:
    """Readers never see a half-written file: write beside it, then rename over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
