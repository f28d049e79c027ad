"""The local AWS's SSM agent signing key: an OpenPGP (RFC 4880, v4) RSA key that signs the
stand-in agent packages the way AWS signs the real ones (a detached, binary ``<package>.sig``).

Created once per state directory, like the local CA (:func:`ensure_key`), under
``DIR/aws/agent-signing/``: ``key.pem`` (the private key, 0600) and ``key.asc`` (the armored
public key). ``worker_env`` configures that public key as the agent trust anchor, so the scripts
the API serves verify the local packages exactly as they verify AWS's, with ``gpgv``.

Only what signing needs is written here: a public key packet, a user id with its self-signature,
and detached signatures over binary documents (SHA-256, RSA PKCS#1 v1.5).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from clients.startup.agent_trust import crc24

__all__ = ["SigningKey", "armor", "ensure_key", "generate", "key_dir"]

_RSA, _SHA256 = 1, 8
_USER_ID = "fleetpatch local AWS SSM agent signer <agent-signer@localaws.fleetpatch.invalid>"


def _mpi(value: int) -> bytes:
    return value.bit_length().to_bytes(2, "big") + value.to_bytes((value.bit_length() + 7) // 8, "big")


def _packet(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 192:
        length = bytes([size])
    elif size < 8384:
        length = bytes([((size - 192) >> 8) + 192, (size - 192) & 0xFF])
    else:
        length = b"\xff" + size.to_bytes(4, "big")
    return bytes([0xC0 | tag]) + length + body


def _subpacket(kind: int, data: bytes) -> bytes:
    return bytes([len(data) + 1, kind]) + data


def armor(packets: bytes) -> str:
    """ASCII armor of a public key block (64-column base64 and its CRC-24)."""
    text = base64.b64encode(packets).decode()
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    crc = base64.b64encode(crc24(packets).to_bytes(3, "big")).decode()
    return "\n".join(["-----BEGIN PGP PUBLIC KEY BLOCK-----", "", *lines, f"={crc}",
                      "-----END PGP PUBLIC KEY BLOCK-----", ""])


@dataclass(frozen=True)
class SigningKey:
    private: rsa.RSAPrivateKey
    created: int  # seconds since the epoch: part of the fingerprint
    expires_after: int | None = None  # seconds after ``created``; None: never expires

    @property
    def _key_body(self) -> bytes:
        numbers = self.private.public_key().public_numbers()
        return b"\x04" + self.created.to_bytes(4, "big") + bytes([_RSA]) + _mpi(numbers.n) + _mpi(numbers.e)

    @property
    def fingerprint(self) -> str:
        body = self._key_body
        return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body, usedforsecurity=False).hexdigest().upper()

    def _signature(self, sig_class: int, signed: bytes, now: int, extra: bytes = b"") -> bytes:
        fingerprint = bytes.fromhex(self.fingerprint)
        hashed = (_subpacket(2, now.to_bytes(4, "big")) + _subpacket(33, b"\x04" + fingerprint) + extra)
        head = bytes([4, sig_class, _RSA, _SHA256]) + len(hashed).to_bytes(2, "big") + hashed
        trailer = head + b"\x04\xff" + len(head).to_bytes(4, "big")
        digest = hashlib.sha256(signed + trailer).digest()
        signature = self.private.sign(signed + trailer, padding.PKCS1v15(), hashes.SHA256())
        unhashed = _subpacket(16, fingerprint[-8:])
        body = head + len(unhashed).to_bytes(2, "big") + unhashed + digest[:2] + _mpi(int.from_bytes(signature, "big"))
        return _packet(2, body)

    def public_packets(self) -> bytes:
        """The public key, its user id and the user id's self-signature (certifies and signs)."""
        body, user_id = self._key_body, _USER_ID.encode()
        signed = (b"\x99" + len(body).to_bytes(2, "big") + body + b"\xb4" + len(user_id).to_bytes(4, "big") + user_id)
        flags = _subpacket(27, b"\x03")  # certify, sign
        if self.expires_after is not None:
            flags += _subpacket(9, self.expires_after.to_bytes(4, "big"))
        return _packet(6, body) + _packet(13, user_id) + self._signature(0x13, signed, self.created, flags)

    def sign(self, document: bytes, now: int | None = None) -> bytes:
        """A detached binary signature of ``document`` (what AWS publishes as ``<package>.sig``)."""
        return self._signature(0x00, document, int(time.time()) if now is None else now)


def generate(created: int | None = None, expires_after: int | None = None) -> SigningKey:
    """A new RSA-3072 signing key."""
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=3072),
                      int(time.time()) - 60 if created is None else created, expires_after)


def key_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "aws" / "agent-signing"


def ensure_key(state_dir: Path) -> tuple[SigningKey, Path]:
    """The state directory's signing key and its armored public key file, created on first use.
    Safe when two processes race (the API's supervisor and the local AWS): the first one's
    key wins, and both read it back."""
    directory = key_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    pem, asc = directory / "key.pem", directory / "key.asc"
    if not asc.exists():
        key = generate()
        tmp = directory / f".key-{os.getpid()}-{time.monotonic_ns()}"
        tmp.with_suffix(".pem").write_bytes(key.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        tmp.with_suffix(".pem").chmod(0o600)
        tmp.with_suffix(".asc").write_text(f"# created {key.created}\n" + armor(key.public_packets()))
        try:
            os.link(tmp.with_suffix(".pem"), pem)
            os.replace(tmp.with_suffix(".asc"), asc)
        except FileExistsError:
            pass
        finally:
            for leftover in (tmp.with_suffix(".pem"), tmp.with_suffix(".asc")):
                leftover.unlink(missing_ok=True)
        while not asc.exists():  # the winner writes key.asc right after key.pem
            time.sleep(0.01)
    created = int(asc.read_text().split("\n", 1)[0].removeprefix("# created "))
    private = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    return SigningKey(private, created), asc
