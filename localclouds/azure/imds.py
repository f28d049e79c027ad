"""Per-VM IMDS, served on the plain-HTTP listener.

A VM's IMDS is ``/vm/{name or vmId}`` followed by the real paths. As real IMDS, every request
must carry ``Metadata: true`` and must not carry ``X-Forwarded-For``; ``api-version`` is
mandatory (except ``/metadata/versions``) and duplicate query parameters are refused.
A VM that is not running (ARM power actions) has no IMDS: 404.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from localclouds.azure import attested, instance
from localclouds.azure.context import AzureContext, Context
from localclouds.azure.vms import ArmError

#: IMDS api-versions, newest first (learn.microsoft.com, "Supported API versions").
API_VERSIONS = (
    "2025-04-07",
    "2024-07-17",
    "2024-03-15",
    "2023-11-15",
    "2023-07-01",
    "2021-12-13",
    "2021-11-15",
    "2021-11-01",
    "2021-10-01",
    "2021-08-01",
    "2021-05-01",
    "2021-03-01",
    "2021-02-01",
    "2021-01-01",
    "2020-12-01",
    "2020-10-01",
    "2020-09-01",
    "2020-07-15",
    "2020-06-01",
    "2019-11-01",
    "2019-08-15",
    "2019-08-01",
    "2019-06-04",
    "2019-06-01",
    "2019-04-30",
    "2019-03-11",
    "2019-02-01",
    "2018-10-01",
    "2018-04-02",
    "2018-02-01",
    "2017-12-01",
    "2017-10-01",
    "2017-08-01",
    "2017-04-02",
    "2017-03-01",
)
#: The first api-version that serves each category.
INTRODUCED = {"attested": "2018-10-01", "instance": "2017-04-02"}
_JSON = "application/json; charset=utf-8"


def _imds_error(status: int, message: str, **extra: Any) -> Response:
    return json_answer(status, {"error": message, **extra})


def json_answer(status: int, body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type=_JSON)


def _bad_version() -> Response:
    return _imds_error(
        400,
        "Bad request. api-version is invalid or was not specified in the request. "
        "For more information refer to aka.ms/azureimds",
        **{"newest-versions": list(API_VERSIONS[:3])},
    )


router = APIRouter()


@router.api_route(
    "/vm/{vm}/metadata/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
)
async def metadata(vm: str, rest: str, request: Request, context: Context) -> Response:
    refused = _refusal(request)
    if refused is not None:
        return refused
    query = dict(request.query_params.multi_items())
    segments = [s for s in rest.split("/") if s]
    if segments == ["versions"]:
        return json_answer(200, {"apiVersions": sorted(API_VERSIONS)})
    if not segments or segments[0] not in INTRODUCED:
        return _imds_error(404, "Not found")
    api_version = query.get("api-version")
    if api_version not in API_VERSIONS or api_version < INTRODUCED[segments[0]]:
        return _bad_version()
    try:
        record = context.store.for_imds(vm)
    except ArmError as exc:
        return _imds_error(exc.status, exc.message)
    if record.get("_local", {}).get("powerState", "running") != "running":
        # A stopped or deallocated VM runs nothing that could ask; treat it as absent.
        return _imds_error(404, "Not found")
    if segments[0] == "attested":
        return _attested(segments, query, api_version, record, context)
    return _instance(segments[1:], query, record)


def _refusal(request: Request) -> Response | None:
    """What real IMDS answers a request it refuses whatever the path: proxied, without the
    ``Metadata: true`` header, not a GET, or with a query parameter twice."""
    if "x-forwarded-for" in request.headers:
        return _imds_error(400, "Bad request. Requests with an X-Forwarded-For header are rejected")
    if request.headers.get("metadata", "").lower() != "true":
        return _imds_error(400, "Bad request. Required metadata header not specified")
    if request.method != "GET":
        return _imds_error(405, "Method not allowed. Only GET is supported")
    items = request.query_params.multi_items()
    if len({k for k, _ in items}) != len(items):
        return _imds_error(400, "Bad request. Duplicate query parameters are not allowed")
    return None


def _attested(
    segments: list[str], query: dict[str, str], api_version: str, record: dict,
    context: AzureContext,
) -> Response:
    if segments != ["attested", "document"]:
        return _imds_error(404, "Not found")
    nonce = query.get("nonce") or None
    if nonce is not None and not attested.NONCE.fullmatch(nonce):
        return _imds_error(
            400, "Bad request. The nonce must be at most 32 alphanumeric characters"
        )
    now = context.clock()
    content = attested.content_for(record, nonce=nonce, api_version=api_version, now=now)
    signer = context.material.signer(record["location"], now)
    return json_answer(200, attested.attested_document(content, signer, now))


def _instance(segments: list[str], query: dict[str, str], record: dict) -> Response:
    fmt = query.get("format", "json")
    if fmt not in ("json", "text"):
        return _imds_error(400, "Bad request. Unsupported format; use json or text")
    try:
        node = instance.walk(instance.instance_document(record), segments)
    except instance.NotFoundPath:
        return _imds_error(404, "Not found")
    if fmt == "text":
        return PlainTextResponse(instance.as_text(node), media_type="text/plain; charset=utf-8")
    if not isinstance(node, dict | list):
        return _imds_error(400, "Bad request. Querying a leaf node requires format=text")
    return json_answer(200, node)
