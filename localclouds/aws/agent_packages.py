"""The SSM agent's download location, as the local AWS S3 serves it.

AWS publishes the agent per region in the bucket ``amazon-ssm-{region}`` under ``latest/``:
``debian_{arch}/amazon-ssm-agent.deb``, ``linux_{arch}/amazon-ssm-agent.rpm`` and
``windows_amd64/AmazonSSMAgentSetup.exe``. The local AWS publishes stand-in packages on the same
keys (small text files that the simulated VMs' ``dpkg``/``rpm`` stand-ins "install", which gives
the VM its simulated agent). As AWS does, each Linux package has its detached OpenPGP signature
beside it (``<key>.sig``), made with the local AWS's own signing key (agent_signing.py), which
the local default configures as the scripts' trust anchor; the Windows stand-in carries no
Authenticode signature (no simulated VM runs the PowerShell script). The bucket is readable
without credentials, as AWS's is. Published at every start (after the saved state is restored),
so the objects always match this code and the state directory's key.
"""

from __future__ import annotations

import json

from localclouds.aws.agent_signing import SigningKey

#: The version the stand-in packages carry (the simulated agent then reports it).
STANDIN_VERSION = "3.3.1802.0"
#: The first line of every stand-in package (the fleet's package stand-ins check it).
MAGIC = "fleetpatch stand-in package"
PACKAGES = {
    "debian_amd64/amazon-ssm-agent.deb": "deb",
    "debian_arm64/amazon-ssm-agent.deb": "deb",
    "linux_amd64/amazon-ssm-agent.rpm": "rpm",
    "linux_arm64/amazon-ssm-agent.rpm": "rpm",
    "windows_amd64/AmazonSSMAgentSetup.exe": "exe",
}


def bucket_name(region: str) -> str:
    return f"amazon-ssm-{region}"


def standin(kind: str, version: str = STANDIN_VERSION) -> bytes:
    """A stand-in package of ``kind`` (deb, rpm, exe)."""
    return f"{MAGIC}\npackage: amazon-ssm-agent\nformat: {kind}\nversion: {version}\n".encode()


def signed(kind: str) -> bool:
    """Whether AWS publishes an OpenPGP signature beside packages of ``kind`` (Linux ones)."""
    return kind in ("deb", "rpm")


def publish(account_id: str, region: str, signer: SigningKey) -> list[str]:
    """Create (or refresh) the region's agent bucket with every stand-in and the signatures of
    the Linux ones; the keys written."""
    from moto.s3.exceptions import BucketAlreadyExists
    from moto.s3.models import s3_backends

    backend = s3_backends[account_id]["aws"]
    name = bucket_name(region)
    try:
        backend.create_bucket(name, region)
    except BucketAlreadyExists:
        pass
    backend.put_bucket_policy(name, json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{name}/*"}]}).encode())
    written = ["latest/VERSION"]
    backend.put_object(name, "latest/VERSION", f"{STANDIN_VERSION}\n".encode())
    for path, kind in PACKAGES.items():
        body = standin(kind)
        key = f"latest/{path}"
        backend.put_object(name, key, body)
        written.append(key)
        if signed(kind):
            backend.put_object(name, f"{key}.sig", signer.sign(body))
            written.append(f"{key}.sig")
    return written
