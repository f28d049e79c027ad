"""The GCE metadata server, one per VM, under ``/vm/{vm-name}``.

Below that prefix the paths, parameters and headers are the real ones: every request must carry
``Metadata-Flavor: Google`` (else 403) and must not carry ``X-Forwarded-For`` (the real server
refuses proxied requests); every answer carries ``Metadata-Flavor: Google``. Values are plain text.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from localclouds.gcp.state import Instance, InstanceStore, Project
from localclouds.gcp.tokens import TokenSubject, mint_identity_token

router = APIRouter()

PREFIX = "/vm/{vm}/computeMetadata/v1"
_HEADERS = {"Metadata-Flavor": "Google", "Server": "Metadata Server for VM"}


def _answer(status: int, body: str) -> PlainTextResponse:
    return PlainTextResponse(
        body, status_code=status, headers=_HEADERS, media_type="application/text"
    )


def _vm(request: Request, vm: str) -> tuple[Instance, Project] | PlainTextResponse:
    """The VM the request is about, or the refusal the real server would give."""
    if request.headers.get("Metadata-Flavor") != "Google":
        return _answer(
            403,
            "Your client does not have permission to get URL "
            f"{request.url.path} from this server. Missing Metadata-Flavor:Google header.",
        )
    if "X-Forwarded-For" in request.headers:
        return _answer(403, "Request had an X-Forwarded-For header and was rejected.")
    store: InstanceStore = request.app.state.store
    found = store.by_name(vm)
    if found is None:
        return _answer(404, f"no VM named {vm} in this local cloud")
    return found


@router.get(PREFIX + "/instance/service-accounts/{account}/identity")
def identity(request: Request, vm: str, account: str) -> PlainTextResponse:
    found = _vm(request, vm)
    if isinstance(found, PlainTextResponse):
        return found
    instance, project = found
    if account not in ("default", project.service_account_email):
        return _answer(404, "service account not found")
    audience = request.query_params.get("audience", "")
    if not audience:
        return _answer(400, "non-empty audience parameter required")
    token_format = request.query_params.get("format", "standard")
    if token_format not in ("standard", "full"):
        return _answer(400, "format must be standard or full")
    licenses = request.query_params.get("licenses", "FALSE").upper() == "TRUE"
    subject = TokenSubject(
        project_id=project.project_id,
        project_number=project.number,
        service_account_id=project.service_account_id,
        service_account_email=project.service_account_email,
        zone=instance.zone,
        instance_id=instance.id,
        instance_name=instance.name,
        instance_creation_timestamp=int(instance.created),
    )
    token = mint_identity_token(
        request.app.state.signing_key,
        subject,
        audience=audience,
        token_format="full" if token_format == "full" else "standard",
        licenses=licenses,
        issued_at=int(request.app.state.clock()),
    )
    return _answer(200, token)


@router.get(PREFIX + "/instance/service-accounts/{account}/email")
def email(request: Request, vm: str, account: str) -> PlainTextResponse:
    found = _vm(request, vm)
    if isinstance(found, PlainTextResponse):
        return found
    return _answer(200, found[1].service_account_email)


#: The plain values the metadata server answers, by path below ``PREFIX``.
_VALUES: dict[str, Callable[[Instance, Project], str]] = {
    "/instance/id": lambda instance, project: instance.id,
    "/instance/name": lambda instance, project: instance.name,
    "/instance/hostname": lambda instance, project: (
        f"{instance.name}.{instance.zone}.c.{project.project_id}.internal"
    ),
    "/instance/zone": lambda instance, project: f"projects/{project.number}/zones/{instance.zone}",
    "/project/project-id": lambda instance, project: project.project_id,
    "/project/numeric-project-id": lambda instance, project: str(project.number),
}


def _value_route(value: Callable[[Instance, Project], str]) -> Callable[..., PlainTextResponse]:
    def answer(request: Request, vm: str) -> PlainTextResponse:
        found = _vm(request, vm)
        return found if isinstance(found, PlainTextResponse) else _answer(200, value(*found))

    return answer


for _path, _value in _VALUES.items():
    router.add_api_route(PREFIX + _path, _value_route(_value), methods=["GET"])
