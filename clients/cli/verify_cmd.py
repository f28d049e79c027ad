"""``fleetpatch verify``: verify one VM identity offline, as the workers would, and say why not.

It answers "why was this VM refused?": the same verifier code as the provider workers, with the
production trust anchors unless told otherwise, and an explicit clock for old documents.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from clients.cli.common import console, err_console
from config.settings import Settings
from contracts.errors import ErrorType, IdentityRefused
from contracts.identity import VerifiedIdentity

_MAX_FILE = 256 * 1024
_PEM_ARMOUR = re.compile(r"-----BEGIN [A-Z0-9 ]+-----|-----END [A-Z0-9 ]+-----")


class VerifyProvider(StrEnum):
    GCP = "gcp"
    AZURE = "azure"
    AWS = "aws"
    VMWARE = "vmware"


class Ec2Form(StrEnum):
    RSA2048 = "rsa2048"
    PKCS7 = "pkcs7"
    SIGNATURE = "signature"


def verify(
    provider: VerifyProvider = typer.Option(..., "--provider", help="Which cloud signed the identity."),
    identity: Path = typer.Option(..., "--identity", exists=True, dir_okay=False, help="What the VM sent (see below)."),
    at: datetime | None = typer.Option(None, "--at", help="Verify as of this time (ISO 8601); default now."),
    audience: str | None = typer.Option(None, "--audience", help="gcp: the audience the token must carry."),
    nonce: str | None = typer.Option(None, "--nonce", help="azure: the nonce the document must carry."),
    jwks: Path | None = typer.Option(None, "--jwks", exists=True, dir_okay=False, help="gcp: a JWKS file instead of Google's."),
    intermediates: Path | None = typer.Option(None, "--intermediates", exists=True, help="azure: intermediate CA PEMs."),
    roots: Path | None = typer.Option(
        None, "--roots", exists=True,
        help="azure: root CA PEMs; aws: a certificates directory ({rsa2048,rsa,dsa}/REGION.pem); "
        "vmware: the vCenter's token public keys (PEM).",
    ),
    form: Ec2Form | None = typer.Option(None, "--form", help="aws: the signed form of a bare blob (default rsa2048)."),
) -> None:
    """Verify one identity and print it as JSON (exit 0), or print the refusal (exit 1).

    FILE holds what a VM sends. aws: the base64 rsa2048 blob, or JSON with "rsa2048", "pkcs7",
    or "document" + "signature". gcp: the token. azure: the IMDS JSON
    {"encoding": "pkcs7", "signature": ...}. vmware: the token.
    """
    now = _aware(at) if at else datetime.now(UTC)
    text = _read(identity)
    settings = Settings()
    try:
        verified = _VERIFIERS[provider](
            text, now=now, settings=settings, audience=audience, nonce=nonce,
            jwks=jwks, intermediates=intermediates, roots=roots, form=form,
        )
    except IdentityRefused as err:
        console.print_json(json.dumps({"refused": err.type.value, "reason": err.reason}))
        raise typer.Exit(1) from None
    console.print_json(json.dumps(identity_json(verified)))


def identity_json(identity: VerifiedIdentity) -> dict[str, Any]:
    doc = asdict(identity)
    doc["provider"] = identity.provider.value
    doc["issued_at"] = identity.issued_at.isoformat()
    doc["instance_key"] = identity.instance_key
    return doc


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _read(path: Path) -> str:
    if path.stat().st_size > _MAX_FILE:
        err_console.print(f"[red]{path} is over {_MAX_FILE} bytes: not an identity[/red]")
        raise typer.Exit(2)
    return path.read_text(errors="replace").strip()


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "the file starts like JSON but is not JSON") from None
    if not isinstance(value, dict):
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, "the file holds JSON that is not an object")
    return value


def _gcp(text: str, *, now: datetime, settings: Settings, audience: str | None, jwks: Path | None, **_: Any) -> VerifiedIdentity:
    from clouds.gcp.jwks import RemoteJwks, StaticJwks
    from clouds.gcp.verify import verify_gcp_token

    keys = StaticJwks.from_file(jwks) if jwks else RemoteJwks.for_url(settings.gcp.jwks_url)
    return verify_gcp_token(
        text, keys=keys, audience=audience or settings.gcp.audience, now=now, max_age=settings.gcp.max_token_age
    )


def _azure(
    text: str, *, now: datetime, settings: Settings, nonce: str | None,
    intermediates: Path | None, roots: Path | None, **_: Any,
) -> VerifiedIdentity:
    from clouds.azure.verify import trust_from_settings, verify_azure_attested

    attested = _json_object(text)
    if attested is None:
        raise IdentityRefused(ErrorType.IDENTITY_MALFORMED, 'an azure identity is the IMDS JSON {"encoding", "signature"}')
    root_certs, intermediate_certs = trust_from_settings(roots, intermediates)
    if nonce is None:
        err_console.print("[yellow]no --nonce: the document's nonce is not checked[/yellow]")
    return verify_azure_attested(
        attested, nonce=nonce, roots=root_certs, intermediates=intermediate_certs, now=now,
        allowed_san_domains=settings.azure.allowed_san_domains, max_age=settings.azure.max_document_age,
        require_nonce=nonce is not None,
    )


def _aws(text: str, *, now: datetime, settings: Settings, roots: Path | None, form: Ec2Form | None, **_: Any) -> VerifiedIdentity:
    from clouds.ec2.verify import Ec2TrustStore, verify_ec2_identity

    identity = _json_object(text)
    if identity is None:
        identity = {(form or Ec2Form.RSA2048).value: _PEM_ARMOUR.sub("", text).strip()}
    trust = Ec2TrustStore.from_dir(roots) if roots else Ec2TrustStore.production()
    # An operator asking "why" gets every form checked; registration accepts only the configured ones.
    return verify_ec2_identity(identity, trust=trust, now=now, accepted_forms=frozenset(f.value for f in Ec2Form))


def _vmware(text: str, *, now: datetime, roots: Path | None, **_: Any) -> VerifiedIdentity:
    from clouds.vmware.token import peek_vcenter_token, verify_token
    from contracts.providers import Provider

    if roots is None:
        raise IdentityRefused(ErrorType.IDENTITY_KEY_UNKNOWN, "give the vCenter's token public keys with --roots FILE")
    pems = re.findall(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", roots.read_text(), flags=re.S)
    from contracts.vcenter_links import vcenter_of

    link, _ = peek_vcenter_token(text)  # the link it names: give that link's keys
    token = verify_token(text, public_keys=pems, vcenter_id=vcenter_of(link), link=link, now=now)
    return VerifiedIdentity(
        provider=Provider.VMWARE,
        cloud_account=token.link,
        instance_id=token.instance_uuid,
        issued_at=token.issued_at,
        evidence={"jti": token.jti, "alg": token.alg, "key_sha256": token.key_fingerprint, "customer": token.customer,
                  "live_vm_check": "not done offline (nor the link's folder or pool)"},
    )


_VERIFIERS = {
    VerifyProvider.GCP: _gcp,
    VerifyProvider.AZURE: _azure,
    VerifyProvider.AWS: _aws,
    VerifyProvider.VMWARE: _vmware,
}
