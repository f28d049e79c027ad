"""BIOS UUID matching: the guest's SMBIOS UUID against vSphere's config.uuid, either byte order."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from clouds.vmware.biosuuid import bios_uuid_matches, format_uuid, swap_first_fields

VM_UUID = "421c5d1e-7a3b-9f04-c2d1-0a1b2c3d4e5f"
# The same 16 bytes as an SMBIOS < 2.6 guest prints them: fields 1-3 byte-reversed.
LEGACY = "1e5d1c42-3b7a-049f-c2d1-0a1b2c3d4e5f"


def test_same_form_matches() -> None:
    assert bios_uuid_matches(VM_UUID, VM_UUID)


def test_byte_swapped_form_matches() -> None:
    assert bios_uuid_matches(VM_UUID, LEGACY)


def test_case_and_surrounding_whitespace_are_ignored() -> None:
    assert bios_uuid_matches(VM_UUID, LEGACY.upper() + "\n")  # product_uuid ends with a newline
    assert bios_uuid_matches(VM_UUID.upper(), VM_UUID)


def test_wrong_uuid_does_not_match() -> None:
    assert not bios_uuid_matches(VM_UUID, "421c5d1e-7a3b-9f04-c2d1-0a1b2c3d4e50")
    assert not bios_uuid_matches(VM_UUID, str(uuid.uuid4()))


def test_partial_swaps_do_not_match() -> None:
    only_first = "1e5d1c42-7a3b-9f04-c2d1-0a1b2c3d4e5f"
    whole_reversed = format_uuid(bytes.fromhex(VM_UUID.replace("-", ""))[::-1])
    assert not bios_uuid_matches(VM_UUID, only_first)
    assert not bios_uuid_matches(VM_UUID, whole_reversed)


def test_garbage_never_matches_and_never_raises() -> None:
    for bad in (None, 42, b"421c5d1e", "", "not-a-uuid", VM_UUID.replace("-", ""), "{" + VM_UUID + "}",
                VM_UUID + "0", "x" * 10_000):
        assert not bios_uuid_matches(VM_UUID, bad)
        assert not bios_uuid_matches(bad, VM_UUID)


def test_nil_and_all_ones_never_match() -> None:
    nil = "00000000-0000-0000-0000-000000000000"
    ones = "ffffffff-ffff-ffff-ffff-ffffffffffff"
    assert not bios_uuid_matches(nil, nil)
    assert not bios_uuid_matches(ones, ones)


@given(st.binary(min_size=16, max_size=16))
def test_swap_is_an_involution_and_both_forms_match(raw: bytes) -> None:
    assert swap_first_fields(swap_first_fields(raw)) == raw
    if raw not in (bytes(16), b"\xff" * 16):
        assert bios_uuid_matches(format_uuid(raw), format_uuid(swap_first_fields(raw)))
        assert bios_uuid_matches(format_uuid(swap_first_fields(raw)), format_uuid(raw))
    assert format_uuid(raw) == str(uuid.UUID(bytes=raw))
    assert format_uuid(swap_first_fields(raw)) == str(uuid.UUID(bytes_le=raw))
