"""The trust anchor a startup script checks a downloaded SSM agent package against.

Linux packages carry a detached OpenPGP signature (``<package>.sig``). The key that must have made
it is configuration (settings ``aws.agent_signing_key_file``, default AWS's own key shipped in
``clouds/aws/trust/amazon-ssm-agent.asc``), pinned by its fingerprint(s)
(``aws.agent_signing_fingerprints``); the API bakes the key, as a binary keyring, into every script
it serves, so a VM never fetches a key at boot. Windows installers carry Authenticode signatures:
the script checks the signer's name (and thumbprints, when configured).

Only what the API needs is parsed here: the armor (with its CRC-24), the public key packets' v4
fingerprints and (for a warning) their self-signatures' expiry. Signatures are checked on the VM,
by ``gpgv``, never here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import AwsSettings

__all__ = ["AgentTrust", "DEFAULT_KEY_FILE", "crc24", "dearmor", "expiries", "expiry_warning", "fingerprints", "from_settings",
           "load", "normalize_fingerprint"]

DEFAULT_KEY_FILE = Path(__file__).resolve().parents[2] / "clouds" / "aws" / "trust" / "amazon-ssm-agent.asc"
_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_END = "-----END PGP PUBLIC KEY BLOCK-----"
_PUBLIC_KEY = 6
_FINGERPRINT = re.compile(r"^[0-9A-F]{40}$")
#: What a Windows signer name may hold to be baked into a PowerShell single-quoted string.
_SIGNER = re.compile(r"^[A-Za-z0-9 .,&()-]{1,200}$")
_THUMBPRINT = re.compile(r"^[0-9A-F]{40}$")


@dataclass(frozen=True)
class AgentTrust:
    """What a served script trusts: the keyring (base64 of binary OpenPGP packets), the primary
    key fingerprints a signature must come from, and the Windows installer's signer."""

    keyring_b64: str
    fingerprints: tuple[str, ...]
    windows_signer: str = "Amazon.com Services LLC"
    windows_thumbprints: tuple[str, ...] = ()


def normalize_fingerprint(value: str) -> str:
    """``DE92 C7DA ...`` or ``de92c7da...`` -> 40 upper-case hex digits; ValueError otherwise."""
    compact = re.sub(r"\s+", "", value).upper().removeprefix("0X")
    if not _FINGERPRINT.match(compact):
        raise ValueError(f"{value!r} is not a v4 OpenPGP fingerprint (40 hex digits)")
    return compact


def crc24(data: bytes) -> int:
    """OpenPGP armor's checksum (RFC 4880, 6.1)."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(data: bytes) -> bytes:
    """The binary packets of one or more armored public key blocks (each CRC-24 checked, their
    packets concatenated), or ``data`` itself when it is binary already. ValueError otherwise."""
    if data[:1] and data[0] & 0x80:
        return data
    text = data.decode("ascii") if data.isascii() else ""
    lines = [line.strip() for line in text.replace("\r", "").split("\n")]
    packets, at = b"", 0
    while _BEGIN in lines[at:]:
        begin = lines.index(_BEGIN, at)
        if _END not in lines[begin:]:
            raise ValueError("an armored key block has no END line")
        at = lines.index(_END, begin)
        packets += _block(lines[begin + 1:at])
    if not packets:
        raise ValueError("not an OpenPGP public key block (armored or binary)")
    return packets


def _block(body: list[str]) -> bytes:
    if "" in body:  # armor headers (Version: ...) end at the first blank line
        body = body[body.index("") + 1:]
    checksum = [line for line in body if line.startswith("=")]
    payload = "".join(line for line in body if line and not line.startswith("="))
    try:
        packets = base64.b64decode(payload, validate=True)
        expected = base64.b64decode(checksum[0][1:], validate=True) if checksum else None
    except binascii.Error:
        raise ValueError("the armored key is not valid base64") from None
    if expected is not None and int.from_bytes(expected, "big") != crc24(packets):
        raise ValueError("the armored key's CRC-24 does not match (damaged copy)")
    return packets


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, body) of every packet; ValueError for a truncated or indeterminate-length packet."""
    found, at = [], 0
    while at < len(data):
        first = data[at]
        if not first & 0x80:
            raise ValueError(f"no OpenPGP packet at byte {at}")
        if first & 0x40:  # new format
            tag, at = first & 0x3F, at + 1
            octet = data[at] if at < len(data) else 256
            if octet < 192:
                length, at = octet, at + 1
            elif octet < 224:
                length, at = ((octet - 192) << 8) + data[at + 1] + 192, at + 2
            elif octet == 255:
                length, at = int.from_bytes(data[at + 1:at + 5], "big"), at + 5
            else:
                raise ValueError("partial-length packets are not used in keys")
        else:  # old format
            tag, kind, at = (first >> 2) & 0x0F, first & 0x03, at + 1
            if kind == 3:
                raise ValueError("indeterminate-length packets are not used in keys")
            size = (1, 2, 4)[kind]
            length, at = int.from_bytes(data[at:at + size], "big"), at + size
        if at + length > len(data):
            raise ValueError("truncated OpenPGP packet")
        found.append((tag, data[at:at + length]))
        at += length
    return found


def _fingerprint(key_body: bytes) -> str:
    if key_body[:1] != b"\x04":
        raise ValueError("only version 4 OpenPGP keys are supported")
    framed = b"\x99" + len(key_body).to_bytes(2, "big") + key_body
    return hashlib.sha1(framed, usedforsecurity=False).hexdigest().upper()


def fingerprints(keyring: bytes) -> list[str]:
    """The v4 fingerprints of the primary keys in ``keyring`` (binary packets), in order."""
    primaries = []
    for tag, body in _packets(keyring):
        if tag == _PUBLIC_KEY:
            primaries.append(_fingerprint(body))
    if not primaries:
        raise ValueError("the keyring holds no public key")
    return primaries


def _subpackets(data: bytes) -> dict[int, bytes]:
    """Signature subpackets by type (the critical bit dropped; the last of a type wins)."""
    found, at = {}, 0
    while at < len(data):
        octet = data[at]
        if octet < 192:
            length, at = octet, at + 1
        elif octet < 255:
            length, at = ((octet - 192) << 8) + data[at + 1] + 192, at + 2
        else:
            length, at = int.from_bytes(data[at + 1:at + 5], "big"), at + 5
        if length and at + length <= len(data):
            found[data[at] & 0x7F] = data[at + 1:at + length]
        at += length
    return found


def _self_signature(body: bytes, key_id: bytes) -> tuple[int, int | None] | None:
    """(created, key expiry seconds or None) of a v4 self-certification by ``key_id``, else None."""
    if len(body) < 6 or body[0] != 4 or body[1] not in (0x10, 0x11, 0x12, 0x13, 0x1F):
        return None
    hashed_end = 6 + int.from_bytes(body[4:6], "big")
    hashed = _subpackets(body[6:hashed_end])
    unhashed = _subpackets(body[hashed_end + 2:hashed_end + 2 + int.from_bytes(body[hashed_end:hashed_end + 2], "big")])
    issuer = hashed.get(16) or unhashed.get(16) or (hashed.get(33) or b"")[-8:]
    if issuer != key_id or 2 not in hashed:
        return None
    seconds = int.from_bytes(hashed[9], "big") if 9 in hashed else 0
    return int.from_bytes(hashed[2], "big"), seconds or None


def expiries(keyring: bytes) -> dict[str, int | None]:
    """When each primary key expires (seconds since the epoch; None: never), as its newest
    self-signature says. Informative only (no signature is checked here): gpgv decides on the VM."""
    found: dict[str, int | None] = {}
    current: tuple[str, int, int] | None = None  # fingerprint, key created, newest self-signature
    for tag, body in _packets(keyring):
        if tag == _PUBLIC_KEY:
            fingerprint = _fingerprint(body)
            current = (fingerprint, int.from_bytes(body[1:5], "big"), -1)
            found[fingerprint] = None
        elif tag == 2 and current is not None:
            signature = _self_signature(body, bytes.fromhex(current[0][-16:]))
            if signature and signature[0] >= current[2]:
                current = (current[0], current[1], signature[0])
                found[current[0]] = None if signature[1] is None else current[1] + signature[1]
    return found


def expiry_warning(trust: AgentTrust, now: float) -> str | None:
    """What an operator should hear when a pinned key has expired (the scripts refuse whatever
    it signed), or None."""
    expired = {f: e for f, e in expiries(base64.b64decode(trust.keyring_b64)).items()
               if f in trust.fingerprints and e is not None and e <= now}
    if not expired:
        return None
    dates = ", ".join(f"{f} on {datetime.fromtimestamp(e, UTC):%Y-%m-%d}" for f, e in expired.items())
    return (f"the SSM agent signing key expired ({dates}): VMs without an agent refuse every package it signed; "
            "configure the key's current copy (FLEETPATCH_AWS__AGENT_SIGNING_KEY_FILE)")


@functools.lru_cache(maxsize=8)
def _keyring(path: str, mtime_ns: int) -> bytes:
    """The file's packets, read again only when it changes (the API serves a script per VM)."""
    return dearmor(Path(path).read_bytes())


def load(key_file: Path | None, pinned: list[str], windows_signer: str = "Amazon.com Services LLC",
         windows_thumbprints: list[str] | None = None) -> AgentTrust:
    """The trust to bake into scripts: ``key_file`` (None: AWS's shipped key) must hold a key for
    every pinned fingerprint (the scripts accept a signature only from a pinned key, whatever else
    the file holds). ValueError saying what is wrong."""
    path = key_file or DEFAULT_KEY_FILE
    try:
        keyring = _keyring(str(path), path.stat().st_mtime_ns)
    except OSError as err:
        raise ValueError(f"cannot read the agent signing key {path}: {err.strerror}") from None
    wanted = [normalize_fingerprint(f) for f in pinned]
    if not wanted:
        raise ValueError("no agent signing fingerprint is configured (aws.agent_signing_fingerprints)")
    present = fingerprints(keyring)
    missing = [f for f in wanted if f not in present]
    if missing:
        raise ValueError(f"the agent signing key file {path.name} holds no key {', '.join(missing)}"
                         f" (it holds {', '.join(present)})")
    if not _SIGNER.match(windows_signer):
        raise ValueError(f"aws.agent_windows_signer {windows_signer!r} is not a plain signer name")
    thumbprints = tuple(re.sub(r"\s+", "", t).upper() for t in windows_thumbprints or [])
    bad = [t for t in thumbprints if not _THUMBPRINT.match(t)]
    if bad:
        raise ValueError(f"aws.agent_windows_thumbprints {bad[0]!r} is not a SHA-1 thumbprint (40 hex digits)")
    return AgentTrust(base64.b64encode(keyring).decode(), tuple(wanted), windows_signer, thumbprints)


def from_settings(aws: AwsSettings) -> AgentTrust:
    """:func:`load` with the ``aws.agent_*`` settings."""
    return load(aws.agent_signing_key_file, aws.agent_signing_fingerprints, aws.agent_windows_signer,
                aws.agent_windows_thumbprints)
