"""Fixtures for the GCP tests: a local signing key (one per session) and key sources."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from clouds.gcp.jwks import StaticJwks
from localclouds.gcp.keys import SigningKey
from tests.unit.gcp.forge import SAMPLE_JWKS, Forge


@pytest.fixture(scope="session")
def forge() -> Forge:
    return Forge(SigningKey.from_private_key(rsa.generate_private_key(65537, 2048)))


@pytest.fixture(scope="session")
def local_keys(forge: Forge) -> StaticJwks:
    return StaticJwks(forge.key.jwks())


@pytest.fixture(scope="session")
def google_keys() -> StaticJwks:
    return StaticJwks(SAMPLE_JWKS)


@pytest.fixture(scope="session")
def attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)
