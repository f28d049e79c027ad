"""The attested document: IMDS's signed statement of a VM's identity.

Content fields and their order follow real documents (see tests/data/azure/): ``licenseType``
(api-version 2020-09-01+), ``nonce``, ``plan``, ``sku`` (2019-11-01+), ``subscriptionId``
(2019-04-30+), ``timeStamp`` ``{createdOn, expiresOn}`` as ``MM/DD/YY HH:MM:SS -0000``, ``vmId``.
A document is valid for 6 hours. Without a nonce IMDS puts a timestamp there: in every real
sample it is the expiry time as ``YYYYMMDD-HHMMSS``.

The signature is a PKCS#7 SignedData over the compact JSON (SHA-256, RSA, signed attributes)
that embeds the signer certificate only, not its chain - as the real one does.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta
from typing import Any

from localclouds import tls

NONCE = re.compile(r"^[A-Za-z0-9]{1,32}$")
VALIDITY = timedelta(hours=6)
_STAMP = "%m/%d/%y %H:%M:%S -0000"


def _version_at_least(api_version: str, minimum: str) -> bool:
    return api_version >= minimum  # ISO dates compare as strings


def default_nonce(expires_on: datetime) -> str:
    return expires_on.strftime("%Y%m%d-%H%M%S")


def content_for(
    vm: dict[str, Any], *, nonce: str | None, api_version: str, now: datetime
) -> dict[str, Any]:
    """The document IMDS signs for ``vm`` (an ARM resource) at ``now``."""
    props = vm["properties"]
    image = props.get("storageProfile", {}).get("imageReference") or {}
    plan = vm.get("plan") or {}
    created = now.replace(microsecond=0)
    expires = created + VALIDITY
    subscription = vm["id"].split("/")[2]
    doc: dict[str, Any] = {}
    if _version_at_least(api_version, "2020-09-01"):
        doc["licenseType"] = props.get("licenseType") or ""
    doc["nonce"] = nonce if nonce else default_nonce(expires)
    doc["plan"] = {
        "name": plan.get("name") or "",
        "product": plan.get("product") or "",
        "publisher": plan.get("publisher") or "",
    }
    if _version_at_least(api_version, "2019-11-01"):
        doc["sku"] = image.get("sku") or ""
    if _version_at_least(api_version, "2019-04-30"):
        doc["subscriptionId"] = subscription
    doc["timeStamp"] = {
        "createdOn": created.strftime(_STAMP),
        "expiresOn": expires.strftime(_STAMP),
    }
    doc["vmId"] = props["vmId"]
    return doc


def attested_document(
    content: dict[str, Any], signer: tls.CertifiedKey, now: datetime
) -> dict[str, str]:
    """``{"encoding": "pkcs7", "signature": base64(DER SignedData)}`` for ``content``."""
    body = json.dumps(content, separators=(",", ":")).encode()
    der = tls.sign_pkcs7(
        body, signer, digest="sha256", certificates=[signer.certificate], signing_time=now
    )
    return {"encoding": "pkcs7", "signature": base64.b64encode(der).decode()}
