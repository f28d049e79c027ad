"""Who is calling: the account of a request, decided exactly as moto decides it.

moto maps an access key to an account by looking it up among the IAM access keys it knows
(users' keys and the temporary keys STS AssumeRole created), falling back to the default
account. We reuse that lookup (``moto.iam.models.get_account_id_from``) so our SSM/Organizations
handlers and moto's own services always agree; the temporary credentials we hand to SSM agents
are created the same way STS creates them (``create_temp_access_key`` in the target account).

The agent's RequestManagedInstanceRoleToken is signed like the real agent signs it: a SigV4
string-to-sign whose "signature" is an RSA-PSS/SHA-256 signature made with the instance's
private key, the access key id being the managed instance id.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from localclouds.aws.protocol import AwsError

# The same pattern moto's BaseResponse uses to find the access key in the header.
_ACCESS_KEY = re.compile(r"AWS.*(?P<access_key>(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9]))[:/]")
_SCOPE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
_SIGNED_HEADERS = re.compile(r"SignedHeaders=([^,\s]+)")
_SIGNATURE = re.compile(r"Signature=([A-Za-z0-9+/=]+)")
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_PUBLIC_KEY_CHARS = 4096


@dataclass(frozen=True)
class Caller:
    """The account, region and key a request was made with."""

    account_id: str
    region: str
    access_key: str | None
    service: str | None


def credential_scope(authorization: str) -> tuple[str, str, str, str] | None:
    """(access key, date, region, service) from a SigV4 Authorization header."""
    match = _SCOPE.search(authorization or "")
    return match.groups() if match else None  # type: ignore[return-value]


def caller_from_environ(environ: dict[str, Any], default_region: str) -> Caller:
    """Mirror moto's priority: MOTO_ACCOUNT_ID, x-moto-account-id, then the access key."""
    from moto.iam.models import get_account_id_from

    authorization = environ.get("HTTP_AUTHORIZATION", "")
    scope = credential_scope(authorization)
    region = scope[2] if scope else default_region
    service = scope[3] if scope else None
    match = _ACCESS_KEY.search(authorization)
    access_key = match.group("access_key") if match else None
    if "MOTO_ACCOUNT_ID" in os.environ:
        account = os.environ["MOTO_ACCOUNT_ID"]
    elif environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        account = environ["HTTP_X_MOTO_ACCOUNT_ID"]
    else:
        account = get_account_id_from(access_key or "AKIAEXAMPLE")
    return Caller(account, region, access_key, service)


def issue_temporary_credentials(account_id: str) -> tuple[str, str]:
    """A temporary (ASIA...) key that moto maps to ``account_id``, as STS AssumeRole does."""
    from moto.iam.models import iam_backends

    key = iam_backends[account_id]["aws"].create_temp_access_key()
    return key.access_key_id, key.secret_access_key


def load_public_key(encoded: Any) -> rsa.RSAPublicKey:
    """The agent's PublicKey: base64 of a PKIX (SubjectPublicKeyInfo) DER RSA key."""
    if not isinstance(encoded, str) or not encoded or len(encoded) > MAX_PUBLIC_KEY_CHARS:
        raise AwsError("ValidationException", "PublicKey is not a valid RSA public key")
    try:
        key = serialization.load_der_public_key(base64.b64decode(encoded, validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise AwsError("ValidationException", "PublicKey is not a valid RSA public key") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise AwsError("ValidationException", "PublicKey must be an RSA key of 2048 bits or more")
    return key


def rsa_signer_id(environ: dict[str, Any]) -> str:
    """The managed instance id an RSA-signed request claims to come from."""
    scope = credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
    if scope is None:
        raise AwsError("AccessDeniedException", "The request is not signed.")
    return scope[0]


def verify_rsa_request(
    environ: dict[str, Any], body: bytes, public_key: rsa.RSAPublicKey, now: datetime
) -> None:
    """Fail closed unless the request carries a valid RSA SigV4 signature by ``public_key``."""
    denied = AwsError("AccessDeniedException", "The request signature is not valid.")
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    scope = credential_scope(authorization)
    signed = _SIGNED_HEADERS.search(authorization)
    signature = _SIGNATURE.search(authorization)
    amz_date = environ.get("HTTP_X_AMZ_DATE", "")
    if not (scope and signed and signature and amz_date):
        raise denied
    names = signed.group(1).split(";")
    if "host" not in names or "x-amz-date" not in names:
        raise denied
    try:
        stamp = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise denied from None
    if abs(now - stamp) > MAX_CLOCK_SKEW or stamp.strftime("%Y%m%d") != scope[1]:
        raise denied
    headers = {}
    for name in names:
        value = environ.get("HTTP_HOST") if name == "host" else _header(environ, name)
        if value is None:
            raise denied
        headers[name] = value
    path = environ.get("PATH_INFO", "/") or "/"
    query = environ.get("QUERY_STRING", "")
    url = f"http://{environ.get('HTTP_HOST', 'localhost')}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=environ.get("REQUEST_METHOD", "POST"), url=url, data=body,
                         headers=headers)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(scope[0], "unused"), scope[3], scope[2])
    string_to_sign = signer.string_to_sign(request, signer.canonical_request(request))
    try:
        raw = base64.b64decode(signature.group(1), validate=True)
        public_key.verify(
            raw,
            string_to_sign.encode(),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError, binascii.Error):
        raise denied from None


def _header(environ: dict[str, Any], name: str) -> str | None:
    if name == "content-type":
        return environ.get("CONTENT_TYPE")
    if name == "content-length":
        return environ.get("CONTENT_LENGTH")
    return environ.get("HTTP_" + name.upper().replace("-", "_"))
