"""The API process holds no cloud credentials and imports no cloud SDK (google, azure, pyVmomi,
boto3): checked in a fresh interpreter, the way test_roles checks each worker role."""

from __future__ import annotations

import json
import subprocess
import sys

# google.protobuf is Temporal's own dependency, not a cloud SDK.
_SDK_PREFIXES = ("google.auth", "google.api_core", "google.cloud", "google.oauth2", "googleapiclient",
                 "azure", "pyVmomi", "vmware", "boto3", "botocore", "s3transfer")

_PROBE = """
import json, sys
import clients.api.app
import clients.api.__main__
from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from config.settings import Settings

async def never():
    raise ConnectionError("not needed")

app = create_app(Settings(), TemporalGateway(never))
app.openapi()
print(json.dumps(sorted(sys.modules)))
"""


def test_the_api_process_imports_no_cloud_sdk() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "clients.api.routes.registration" in loaded  # the probe really built the API
    sdks = [m for m in loaded if m == "boto3" or m.startswith(_SDK_PREFIXES)]
    assert sdks == [], f"the API process imported cloud SDK modules: {sdks[:10]}"
