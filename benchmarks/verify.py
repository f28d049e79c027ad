"""Identity verification cost, in units of one bare RSA-2048 signature check measured alongside.

Uses the real published samples with the production trust anchors, at a clock inside each
sample's validity. The GCP line also compares with pyjwt's plain ``decode`` (fewer checks).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jwt.algorithms import RSAAlgorithm

from clouds.azure.verify import production_intermediates, production_roots, verify_azure_attested
from clouds.ec2.verify import Ec2TrustStore, verify_ec2_identity
from clouds.gcp.jwks import StaticJwks
from clouds.gcp.verify import verify_gcp_token

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "conformance"


def rate(fn: Callable[[], object], seconds: float = 1.5) -> float:
    """Calls per second over about ``seconds`` (after a short warm-up)."""
    for _ in range(5):
        fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def _bare_rsa() -> Callable[[], object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = b"x" * 512
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    public = key.public_key()
    return lambda: public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def cases() -> dict[str, Callable[[], object]]:
    gcp = DATA / "gcp" / "redhat-us-east1-2021"
    token = (gcp / "token.jwt").read_text().strip()
    jwks = json.loads((gcp / "jwks-kid-6a8ba565.json").read_text())
    audience = "https://subscription.rhsm.redhat.com:443/subscription"
    keys = StaticJwks(jwks)
    gcp_now = datetime(2021, 3, 24, 14, 31, tzinfo=UTC)
    public = RSAAlgorithm.from_jwk(json.dumps(jwks["keys"][0]))

    ec2_blob = (DATA / "aws" / "tc-us-west-2-2018" / "rsa2048.b64").read_text().strip()
    trust = Ec2TrustStore.production()
    ec2_now = datetime(2018, 5, 10, tzinfo=UTC)

    attested = json.loads((DATA / "azure" / "redhat-westeurope-2021" / "attested-document.json").read_text())
    roots, intermediates = list(production_roots()), list(production_intermediates())
    azure_now = datetime(2021, 1, 4, 14, 0, tzinfo=UTC)

    return {
        "bare RSA-2048 verify (unit)": _bare_rsa(),
        "gcp: pyjwt decode (fewer checks)": lambda: jwt.decode(
            token, public, algorithms=["RS256"], audience=audience, options={"verify_exp": False, "verify_iat": False}
        ),
        "gcp: fleetpatch verify": lambda: verify_gcp_token(token, keys=keys, audience=audience, now=gcp_now),
        "aws: fleetpatch verify (rsa2048 PKCS#7)": lambda: verify_ec2_identity(
            {"rsa2048": ec2_blob}, trust=trust, now=ec2_now
        ),
        "azure: fleetpatch verify (PKCS#7 + chain)": lambda: verify_azure_attested(
            attested, nonce="20210104-195534", roots=roots, intermediates=intermediates, now=azure_now
        ),
    }


def run() -> list[tuple[str, float, float]]:
    results = {name: rate(fn) for name, fn in cases().items()}
    unit = results["bare RSA-2048 verify (unit)"]
    return [(name, ops, unit / ops) for name, ops in results.items()]
