"""Stable error type names and the project's own exception types.

The type names are a contract: they travel in Temporal ``ApplicationError.type``, the API's
error bodies and ``fleetpatch verify`` output. Never rename one; add new ones.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorType(StrEnum):
    # Identity refusals: the VM's signed identity is not acceptable. Never retried.
    IDENTITY_MALFORMED = "IdentityMalformed"
    IDENTITY_TOO_LARGE = "IdentityTooLarge"
    IDENTITY_SIGNATURE_INVALID = "IdentitySignatureInvalid"
    IDENTITY_ALGORITHM_REFUSED = "IdentityAlgorithmRefused"
    IDENTITY_KEY_UNKNOWN = "IdentityKeyUnknown"
    IDENTITY_CERTIFICATE_UNTRUSTED = "IdentityCertificateUntrusted"
    IDENTITY_SUBJECT_MISMATCH = "IdentitySubjectMismatch"
    IDENTITY_ISSUER_MISMATCH = "IdentityIssuerMismatch"
    IDENTITY_AUDIENCE_MISMATCH = "IdentityAudienceMismatch"
    IDENTITY_EXPIRED = "IdentityExpired"
    IDENTITY_NOT_YET_VALID = "IdentityNotYetValid"
    IDENTITY_NONCE_MISMATCH = "IdentityNonceMismatch"
    IDENTITY_REGION_UNKNOWN = "IdentityRegionUnknown"
    IDENTITY_CLAIMS_MISSING = "IdentityClaimsMissing"
    IDENTITY_DOCUMENT_MISMATCH = "IdentityDocumentMismatch"
    IDENTITY_TOKEN_MISMATCH = "IdentityTokenMismatch"
    IDENTITY_INSTANCE_MISMATCH = "IdentityInstanceMismatch"
    IDENTITY_VCENTER_UNKNOWN = "IdentityVCenterUnknown"
    IDENTITY_OUT_OF_SCOPE = "IdentityOutOfScope"  # vmware: the VM is outside the link's folder/pool
    IDENTITY_LINK_MISMATCH = "IdentityLinkMismatch"  # vmware: the token was issued under another link

    # The VM and its cloud account.
    INSTANCE_NOT_FOUND = "InstanceNotFound"
    INSTANCE_NOT_RUNNING = "InstanceNotRunning"
    TENANT_NOT_LINKED = "TenantNotLinked"
    PATCHING_NOT_ENABLED = "PatchingNotEnabled"
    PATCH_GROUP_INVALID = "PatchGroupInvalid"
    ALREADY_ENROLLED = "AlreadyEnrolled"
    ENROLLMENT_RUNNING = "EnrollmentRunning"
    AGENT_REGISTRATION_TIMEOUT = "AgentRegistrationTimeout"
    AGENT_TAGS_MISMATCH = "AgentTagsMismatch"

    # AWS control plane.
    ACCOUNT_VENDING_FAILED = "AccountVendingFailed"
    ACCOUNT_NOT_READY = "AccountNotReady"  # benign: still being created, retried
    AGENT_NOT_READY = "AgentNotReady"  # benign: the managed instance has not registered yet
    AWS_ACCESS_DENIED = "AwsAccessDenied"
    AWS_THROTTLED = "AwsThrottled"  # retried

    # Patch windows.
    WINDOW_HELD = "WindowHeld"
    WINDOW_NOT_FOUND = "WindowNotFound"

    # Any cloud API: throttled, 5xx, unreachable. Retried.
    CLOUD_UNAVAILABLE = "CloudUnavailable"

    # Configuration the operator must fix.
    CONFIGURATION_INVALID = "ConfigurationInvalid"
    # A vmware link whose folder or pool may share VMs with another link of the same vCenter.
    LINK_SCOPES_OVERLAP = "LinkScopesOverlap"


#: Error types a retry may cure; every other type is final.
RETRYABLE: frozenset[ErrorType] = frozenset(
    {ErrorType.CLOUD_UNAVAILABLE, ErrorType.AWS_THROTTLED, ErrorType.ACCOUNT_NOT_READY, ErrorType.AGENT_NOT_READY}
)


#: Identity refusals: the API answers 401 for these.
IDENTITY_REFUSALS: frozenset[ErrorType] = frozenset(
    t for t in ErrorType if t.value.startswith("Identity")
)


class FleetpatchError(Exception):
    """Base of the project's own errors: a stable ``type`` and a human ``reason``."""

    retryable: bool = False

    def __init__(self, type: ErrorType, reason: str) -> None:
        super().__init__(f"{type.value}: {reason}")
        self.type = ErrorType(type)
        self.reason = reason


class IdentityRefused(FleetpatchError):
    """A signed identity was refused. Verifiers raise nothing else for bad input."""


class InstanceRefused(FleetpatchError):
    """The VM exists but may not enroll (not found, not running, not labelled)."""


class TransientCloudError(FleetpatchError):
    """A cloud API failed in a way that may pass: throttling, 5xx, network."""

    retryable = True


class NotReady(FleetpatchError):
    """Something being created elsewhere is not there yet: polled again on a flat backoff."""

    retryable = True
