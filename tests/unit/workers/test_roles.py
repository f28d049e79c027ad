"""Each worker role builds with default settings and imports only its own cloud's SDK."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from contracts.providers import WorkerRole

SDKS = {
    "google.cloud.compute_v1": WorkerRole.GCP,
    "azure.mgmt.compute": WorkerRole.AZURE,
    "pyVmomi": WorkerRole.VMWARE,
    "boto3": None,  # the aws and ec2 roles both use boto3
}

_PROBE = """
import json, sys
from config.settings import Settings
from contracts.providers import WorkerRole
from workers.roles import build
parts = build(WorkerRole(sys.argv[1]), Settings(), "q", None)
names = sorted({getattr(a, "__temporal_activity_definition").name for a in parts.activities})
print(json.dumps({"activities": names, "modules": [m for m in sys.modules]}))
"""


@pytest.mark.parametrize("role", list(WorkerRole))
def test_role_imports_only_its_own_sdk(role: WorkerRole) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, role.value], capture_output=True, text=True, check=True, timeout=60
    )
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    loaded = set(probe["modules"])
    for module, owner in SDKS.items():
        if module == "boto3":
            allowed = role in (WorkerRole.AWS, WorkerRole.EC2)
        else:
            allowed = role == owner
        assert (module in loaded) == allowed, f"{role}: {module} loaded={module in loaded}"
    assert "ping" in probe["activities"]
    if role is not WorkerRole.ORCHESTRATOR:
        assert len(probe["activities"]) > 1
