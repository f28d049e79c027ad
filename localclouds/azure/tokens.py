"""Access tokens: issued by the managed-identity endpoint, checked by ARM.

The tokens are RS256 JWTs shaped like Entra ID's v1 access tokens (``iss``
``https://sts.windows.net/{tenant}/``, ``aud`` the requested resource, ``oid``/``tid``/``appid``),
signed by the local token key. ARM accepts a token only with a valid signature by that key,
that issuer, an ARM audience and a current lifetime, as ARM does with Entra's keys.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from localclouds.azure.layout import LocalIdentity

#: The audiences ARM accepts (the resource with and without a trailing slash, and the legacy one).
ARM_AUDIENCES = (
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net",
    "https://management.core.windows.net/",
)
TOKEN_LIFETIME = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=5)


def key_id(key: rsa.RSAPrivateKey) -> str:
    """A stable key id (base64url SHA-1 of the public key), as Entra's ``kid``/``x5t`` look."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_on: int
    resource: str


def issue(
    key: rsa.RSAPrivateKey, identity: LocalIdentity, resource: str, now: datetime
) -> IssuedToken:
    """A token for ``resource`` on behalf of the local managed identity."""
    iat = int(now.timestamp())
    exp = int((now + TOKEN_LIFETIME).timestamp())
    claims = {
        "aud": resource,
        "iss": identity.issuer,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "appid": identity.client_id,
        "appidacr": "2",
        "idp": identity.issuer,
        "idtyp": "app",
        "oid": identity.principal_id,
        "sub": identity.principal_id,
        "tid": identity.tenant_id,
        "ver": "1.0",
    }
    kid = key_id(key)
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "x5t": kid})
    return IssuedToken(access_token=token, expires_on=exp, resource=resource)


class TokenRejected(Exception):
    """Why ARM refuses a bearer token: ``code`` is ARM's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check(token: str, key: rsa.RSAPrivateKey, identity: LocalIdentity, now: datetime) -> dict:
    """The claims of a token ARM accepts, else TokenRejected; the lifetime is checked at ``now``."""
    try:
        claims = jwt.decode(
            token,
            key.public_key(),
            algorithms=["RS256"],
            audience=list(ARM_AUDIENCES),
            issuer=identity.issuer,
            options={
                "require": ["exp", "nbf", "iss", "aud"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidAudienceError as exc:
        raise TokenRejected(
            "InvalidAuthenticationTokenAudience",
            "The access token has been obtained for wrong audience or resource.",
        ) from exc
    except jwt.PyJWTError as exc:
        raise TokenRejected("InvalidAuthenticationToken", "The access token is invalid.") from exc
    stamp = now.timestamp()
    skew = CLOCK_SKEW.total_seconds()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
        raise TokenRejected("InvalidAuthenticationToken", "The access token is invalid.")
    if exp + skew < stamp:
        raise TokenRejected(
            "ExpiredAuthenticationToken", "The access token expiry UTC time is in the past."
        )
    if nbf - skew > stamp:
        raise TokenRejected("InvalidAuthenticationToken", "The access token is not yet valid.")
    return claims
