"""The refusal every malformed PKCS#7 input raises."""

from __future__ import annotations

from contracts.errors import ErrorType, IdentityRefused


def malformed(reason: str) -> IdentityRefused:
    return IdentityRefused(ErrorType.IDENTITY_MALFORMED, reason)
