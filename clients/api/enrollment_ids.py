"""Enrollment ids: the workflow id plus a secret only the registering VM holds.

``{base64url(workflow id)}.{secret}``. The workflow keeps only the secret's SHA-256, and answers
its activation only to a query that presents the matching digest, so polling
``GET /v1/enrollments/{id}`` reveals nothing to someone who merely guesses a workflow id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class EnrollmentId:
    workflow_id: str
    secret: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.secret.encode()).hexdigest()

    def __str__(self) -> str:
        encoded = base64.urlsafe_b64encode(self.workflow_id.encode()).decode().rstrip("=")
        return f"{encoded}.{self.secret}"


def new(workflow_id: str) -> EnrollmentId:
    return EnrollmentId(workflow_id=workflow_id, secret=secrets.token_urlsafe(24))


def parse(value: str) -> EnrollmentId | None:
    encoded, dot, secret = value.partition(".")
    if not dot or not encoded or len(secret) < 16 or len(value) > 512:
        return None
    try:
        workflow_id = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not workflow_id.startswith("enroll/"):
        return None
    return EnrollmentId(workflow_id=workflow_id, secret=secret)
