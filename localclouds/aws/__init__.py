"""Local AWS: moto in server mode, extended with the SSM hybrid plane, the SSM agent side
(registration, ec2messages, inventory and compliance uploads) and asynchronous Organizations.

Run it with ``python -m localclouds.aws --host 127.0.0.1 --port P --state-dir DIR``.
"""

from __future__ import annotations

from pathlib import Path

REGION = "us-east-1"
MANAGEMENT_ACCOUNT = "123456789012"  # moto's default account: owns the Organization
# Dummy management-account credentials; moto maps unknown keys to its default account.
ACCESS_KEY_ID = "AKIAFLEETPATCHLOCAL0"
SECRET_ACCESS_KEY = "fleetpatch-local-secret-not-a-secret"


def state_path(state_dir: Path) -> Path:
    """Where this local cloud keeps its saved state (persistence.py)."""
    return Path(state_dir) / "aws"


def describe(state_dir: Path, host: str, port: int) -> dict:
    """This local cloud's entry in ``.fleetpatch/local.json``."""
    return {
        "endpoint": f"http://{host}:{port}",
        "region": REGION,
        "management_account": MANAGEMENT_ACCOUNT,
    }


def worker_env(state_dir: Path, host: str, port: int) -> dict[str, str]:
    """Environment for a worker that should use this local AWS instead of AWS itself.

    Creates the state directory's agent signing key when it has none (agent_signing.py): the
    scripts the API serves then trust it instead of AWS's key, by configuration only."""
    import json

    from localclouds.aws.agent_signing import ensure_key

    signer, public_key = ensure_key(state_dir)
    return {
        "FLEETPATCH_AWS__ENDPOINT_URL": f"http://{host}:{port}",
        "FLEETPATCH_AWS__REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        # Startup scripts install a missing SSM agent from here (agent_packages.py: stand-ins).
        "FLEETPATCH_AWS__AGENT_DOWNLOAD_URL": f"http://{host}:{port}/amazon-ssm-{{region}}/latest",
        # ... each package verified against the local AWS's signing key (not AWS's).
        "FLEETPATCH_AWS__AGENT_SIGNING_KEY_FILE": str(public_key),
        "FLEETPATCH_AWS__AGENT_SIGNING_FINGERPRINTS": json.dumps([signer.fingerprint]),
    }


def restore_problem(state_dir: Path) -> str | None:
    """Why this local cloud's saved state cannot be restored, or None (no state is no problem)."""
    from localclouds.aws.persistence import header_problem, state_file

    return header_problem(state_file(state_path(state_dir)))


def has_saved_state(state_dir: Path) -> bool:
    from localclouds.aws.persistence import state_file

    return state_file(state_path(state_dir)).exists()
