"""What a verifier proves about a VM."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from contracts.providers import Provider


@dataclass(frozen=True)
class VerifiedIdentity:
    """A VM identity whose every field comes from content a cloud signed.

    ``cloud_account`` is the GCP project id, Azure subscription id, AWS account id or vCenter id;
    ``instance_id`` the GCP numeric instance id, Azure vmId, EC2 instance id or vSphere
    instanceUuid. ``region`` holds the GCP zone, AWS region or Azure location where the document
    names one. ``evidence`` keeps what an auditor needs to re-check the decision: the key id or
    certificate fingerprint that signed, the algorithm, the content digest.
    """

    provider: Provider
    cloud_account: str
    instance_id: str
    issued_at: datetime
    instance_name: str | None = None
    region: str | None = None
    evidence: dict[str, str] = field(default_factory=dict)

    @property
    def instance_key(self) -> str:
        return instance_key(self.cloud_account, self.instance_id)


def instance_key(cloud_account: str, instance_id: str) -> str:
    """The key that names one VM across fleetpatch: ``{cloud account}/{instance id}``."""
    return f"{cloud_account}/{instance_id}"
