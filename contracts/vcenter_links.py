"""vmware link ids: one vCenter shared by several customers (pure functions).

A vmware link's cloud account is its link id. A link of a whole vCenter (or the first link of a
vCenter, as links were before one vCenter could be shared) is named by the vCenter id alone,
``vc01``; a further link of the same vCenter is ``{vcenter id}:{name}``, ``vc01:acme``, and must be
scoped to a folder or resource pool. Everything keyed by a cloud account (the link's Parameter Store
entry, its systems account, its token, reconcile and window schedules, instance keys
``{link id}/{instanceUuid}``) is then per link, while the connection to the vCenter (endpoint,
credentials, signing key in ``FLEETPATCH_VMWARE__VCENTERS``) is looked up by the vCenter part.

The separator is ``:``: it is in none of a vCenter id's characters, and it is allowed in AWS tag
values, Temporal ids and URL path segments. Parameter Store names cannot hold it, so a named link
is stored as ``{prefix}/vmware/{vcenter id}/{name}`` (``parameter_path``).

Two links of one vCenter may not share a VM: their scopes must not overlap (``overlap``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SEPARATOR = ":"
#: A vCenter id (as configured in ``FLEETPATCH_VMWARE__VCENTERS``).
VCENTER_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
#: The name of a further link of a shared vCenter.
LINK_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
#: A vmware link id: ``vc01`` or ``vc01:acme``.
LINK_ID = rf"^{VCENTER_ID}(?:{SEPARATOR}{LINK_NAME})?$"
_LINK_ID = re.compile(LINK_ID)
#: The inventory folders a datacenter holds VMs under: its VM folders and its hosts' resource pools.
_KINDS = {"vm": "folder", "host": "resource pool"}


def is_link_id(value: str) -> bool:
    return bool(_LINK_ID.match(value))


def vcenter_of(link_id: str) -> str:
    """The vCenter a link id names: ``vc01`` for ``vc01`` and for ``vc01:acme``."""
    return link_id.partition(SEPARATOR)[0]


def name_of(link_id: str) -> str | None:
    """The link's own name (``acme`` of ``vc01:acme``), or None for a link named by the vCenter."""
    _, separator, name = link_id.partition(SEPARATOR)
    return name if separator else None


def link_id(vcenter_id: str, name: str | None = None) -> str:
    """``vc01`` or ``vc01:acme``; ValueError for a part that is not a valid id."""
    value = f"{vcenter_id}{SEPARATOR}{name}" if name else vcenter_id
    if not is_link_id(value):
        raise ValueError(f"{value!r} is not a vmware link id (VCENTER or VCENTER:NAME; letters, digits, '.', '_', '-')")
    return value


def parameter_path(link_id_: str) -> str:
    """The link id as a Parameter Store path tail: ``vc01`` or ``vc01/acme``."""
    return link_id_.replace(SEPARATOR, "/", 1)


def _parts(scope: str | None) -> tuple[str, ...]:
    return tuple(p for p in (scope or "").split("/") if p)


def scope_kind(scope: str) -> str | None:
    """``folder`` for a path through a datacenter's ``vm`` folder, ``resource pool`` through its
    ``host`` folder, None when the path names neither."""
    return next((_KINDS[p] for p in _parts(scope) if p in _KINDS), None)


def overlap(a: str | None, b: str | None) -> bool:
    """Whether two scopes of one vCenter may hold the same VM.

    No scope is the whole vCenter. A folder inside (or equal to) the other overlaps. A folder and a
    resource pool always may: a VM is in one folder and in one pool at the same time.
    """
    pa, pb = _parts(a), _parts(b)
    if not pa or not pb:
        return True
    if scope_kind(a or "") != scope_kind(b or ""):
        return True
    shorter = min(len(pa), len(pb))
    return pa[:shorter] == pb[:shorter]


def conflicting(link_id_: str, scope: str | None, others: Iterable[tuple[str, str | None]]) -> str | None:
    """Another link of the same vCenter whose scope overlaps this one, as ``"{id} ({scope})"``;
    None when there is none. ``others`` are ``(link id, scope)`` of the vmware links; the link itself
    (a change to it) is left out."""
    vcenter = vcenter_of(link_id_)
    for other, other_scope in others:
        if other == link_id_ or vcenter_of(other) != vcenter:
            continue
        if overlap(scope, other_scope):
            return f"{other} ({other_scope or 'the whole vCenter'})"
    return None
