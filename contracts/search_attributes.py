"""Temporal search attributes fleetpatch sets: the one list.

``fleetpatch up`` passes it to the dev server; ``fleetpatch temporal search-attributes [--apply]``
prints or registers it (the compose deployment's setup job runs that).
"""

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


def type_name(key: SearchAttributeKey) -> str:
    """The type's name as Temporal's CLI and operator API spell it (``Keyword``, ``Int``, ...)."""
    return key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_").title().replace("_", "")


def declared() -> dict[str, str]:
    """{name: type} of every search attribute fleetpatch sets."""
    return {key.name: type_name(key) for key in ALL}


def dev_server_flags() -> list[str]:
    """``--search-attribute Name=Type`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for name, kind in declared().items():
        flags += ["--search-attribute", f"{name}={kind}"]
    return flags
