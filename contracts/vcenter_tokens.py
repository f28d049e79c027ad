"""Contracts of vCenter tokens without an operator: a schedule per vmware link issues tokens to
labelled VMs that lack a valid one and rotates them before they expire; an enrollment replaces the
token it used, so a copy of it enrolls nothing. Fields are only ever added (with defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class VcenterTokensInput:
    vcenter_id: str  # the link id: the vCenter's id, or "{vcenter id}:{name}" for a further link of it
    customer: str
    public_keys: list[str] = field(default_factory=list)  # the link's: a token they do not verify is replaced
    patching_label: str = "rackspace-addon-patching"
    queue_prefix: str = ""
    scope: str | None = None  # the link's folder or resource pool: only VMs inside it get tokens
    renew_all: bool = False  # an operator's run (`vcenter issue-tokens`): a fresh token for every labelled VM


@dataclass
class VcenterTokensResult:
    issued: list[str] = field(default_factory=list)  # "name (instance uuid)" of each VM given a token
    kept: int = 0  # labelled VMs whose token is valid beyond the renewal margin


@dataclass
class ReplaceTokenInput:
    vcenter_id: str  # the link id the VM enrolled under (its verified cloud account)
    instance_uuid: str
    customer: str
