"""Matching the SMBIOS UUID a guest reports against its VM's BIOS UUID in vSphere.

Facts this relies on:

* vSphere names a VM with two UUIDs. ``config.instanceUuid`` is vCenter's own id (the ``vc.uuid``
  line of the .vmx); the guest cannot see it. ``config.uuid`` is the BIOS UUID (``uuid.bios`` in
  the .vmx), which the virtual firmware puts into the SMBIOS System Information table, where the
  guest reads it (Linux: ``/sys/class/dmi/id/product_uuid``; Windows: Win32_ComputerSystemProduct).
* SMBIOS stores the 16 bytes with the first three fields (4, 2 and 2 bytes) little-endian; this
  was only made explicit in SMBIOS 2.6. Linux and dmidecode decode those fields little-endian when
  the table says 2.6 or later and big-endian (RFC 4122 order) before that. VMware's older
  virtual hardware announces an older SMBIOS version, so guests on it print ``config.uuid`` with
  the first three fields byte-swapped (``421c5d1e-...`` shows as ``1e5d1c42-...``); newer hardware
  prints it as vSphere does.

So a guest-reported UUID is accepted when it equals ``config.uuid`` in either order, ignoring
case and surrounding whitespace. This is a consistency check that binds a token to the VM it was
written to, not a secret: the signed token and the vCenter lookup carry the proof.
"""

from __future__ import annotations

import re

_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
_NIL = bytes(16)
_MAX = b"\xff" * 16


def parse_uuid(text: object) -> bytes | None:
    """The 16 bytes of a canonical 8-4-4-4-12 hex UUID string, or None for anything else."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    text = text.strip()
    if not _UUID_RE.match(text):
        return None
    return bytes.fromhex(text.replace("-", ""))


def swap_first_fields(raw: bytes) -> bytes:
    """Reverse the byte order of the first three UUID fields (4, 2, 2 bytes); the rest is kept."""
    return raw[3::-1] + raw[5:3:-1] + raw[7:5:-1] + raw[8:]


def format_uuid(raw: bytes) -> str:
    """Lowercase 8-4-4-4-12 form of 16 bytes."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def bios_uuid_matches(vm_bios_uuid: object, guest_uuid: object) -> bool:
    """True when the guest-reported SMBIOS UUID is the VM's BIOS UUID (``config.uuid``).

    Either byte order of the first three fields is accepted (see the module docstring). Never
    raises: anything that is not a UUID string, and the nil and all-ones UUIDs (what firmware
    reports when it has none), never match.
    """
    vm = parse_uuid(vm_bios_uuid)
    guest = parse_uuid(guest_uuid)
    if vm is None or guest is None or vm in (_NIL, _MAX):
        return False
    return guest == vm or guest == swap_first_fields(vm)
