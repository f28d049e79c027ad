"""The ``google.compute_engine`` claims of a format=full instance identity token.

Kept apart from the signature and time checks because the API reads them too (without
verification, to name the enrollment workflow): both must see the same fields, validated the
same way, so a value that could break a workflow id (a ``/``, an empty string) never gets that far.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from contracts.errors import ErrorType, IdentityRefused

#: The claims Google adds with ``format=full``; a format=standard token has none of them.
REQUIRED_FIELDS = (
    "project_id",
    "project_number",
    "zone",
    "instance_id",
    "instance_name",
    "instance_creation_timestamp",
)

# GCP project ids, optionally domain-scoped ("example.com:my-project").
_PROJECT_ID = re.compile(r"(?:[a-z0-9][a-z0-9.-]{0,62}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
_INSTANCE_ID = re.compile(r"[1-9][0-9]{0,19}")  # uint64, decimal
_RFC1035 = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")  # instance names and zones


@dataclass(frozen=True)
class ComputeEngineClaims:
    project_id: str
    project_number: int
    zone: str
    instance_id: str
    instance_name: str
    instance_creation_timestamp: int


def compute_engine_claims(payload: dict[str, Any]) -> ComputeEngineClaims:
    """Extract and check the ``google.compute_engine`` claims.

    Missing claims (a format=standard token, or fields absent) -> IdentityClaimsMissing;
    present with a wrong type or shape -> IdentityMalformed.
    """
    google = _claims_object(payload, "google", "google")
    ce = _claims_object(google, "compute_engine", "google.compute_engine")
    missing = [name for name in REQUIRED_FIELDS if name not in ce]
    if missing:
        raise IdentityRefused(
            ErrorType.IDENTITY_CLAIMS_MISSING,
            "google.compute_engine lacks " + ", ".join(missing),
        )
    return ComputeEngineClaims(
        project_id=_text(ce, "project_id", _PROJECT_ID),
        project_number=_integer(ce, "project_number"),
        zone=_text(ce, "zone", _RFC1035),
        instance_id=_text(ce, "instance_id", _INSTANCE_ID),
        instance_name=_text(ce, "instance_name", _RFC1035),
        instance_creation_timestamp=_integer(ce, "instance_creation_timestamp"),
    )


def _claims_object(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        raise IdentityRefused(
            ErrorType.IDENTITY_CLAIMS_MISSING,
            "no google.compute_engine claims: request the token with format=full",
        )
    if not isinstance(value, dict):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, f"claim {path} is not an object")
    return value


def _text(ce: dict[str, Any], name: str, shape: re.Pattern[str]) -> str:
    value = ce[name]
    if not isinstance(value, str) or shape.fullmatch(value) is None:
        raise IdentityRefused(
            ErrorType.IDENTITY_MALFORMED, f"google.compute_engine.{name} has an invalid value"
        )
    return value


def _integer(ce: dict[str, Any], name: str) -> int:
    value = ce[name]
    # bool is an int in Python; JSON true is not a number.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise IdentityRefused(
            ErrorType.IDENTITY_MALFORMED,
            f"google.compute_engine.{name} is not a non-negative integer",
        )
    return value
