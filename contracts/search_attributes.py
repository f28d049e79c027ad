"""Temporal search attributes fleetpatch sets, registered on the dev server by ``fleetpatch up``."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

PROVIDER = SearchAttributeKey.for_keyword("Provider")
CUSTOMER = SearchAttributeKey.for_keyword("Customer")
CLOUD_ACCOUNT = SearchAttributeKey.for_keyword("CloudAccount")
SYSTEMS_ACCOUNT = SearchAttributeKey.for_keyword("SystemsAccount")
PATCH_GROUP = SearchAttributeKey.for_keyword("PatchGroup")
ENROLLMENT_STATE = SearchAttributeKey.for_keyword("EnrollmentState")
WINDOW_OUTCOME = SearchAttributeKey.for_keyword("WindowOutcome")
INSTANCE_KEY = SearchAttributeKey.for_keyword("InstanceKey")

ALL = (
    PROVIDER,
    CUSTOMER,
    CLOUD_ACCOUNT,
    SYSTEMS_ACCOUNT,
    PATCH_GROUP,
    ENROLLMENT_STATE,
    WINDOW_OUTCOME,
    INSTANCE_KEY,
)


def dev_server_flags() -> list[str]:
    """``--search-attribute Name=Type`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}=Keyword"]
    return flags
