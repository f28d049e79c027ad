"""The App Service managed-identity endpoint, served on the plain-HTTP listener.

``/msi/token`` speaks the protocol azure-identity uses when ``IDENTITY_ENDPOINT`` and
``IDENTITY_HEADER`` are set: ``GET ?api-version=2019-08-01&resource=R`` with header
``X-IDENTITY-HEADER``, answering ``{access_token, expires_on, resource, token_type, client_id}``
with ``expires_on`` in epoch seconds as a string.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from localclouds.azure import tokens
from localclouds.azure.context import Context
from localclouds.azure.imds import json_answer
from localclouds.azure.layout import IDENTITY_PATH, LocalIdentity

MSI_API_VERSION = "2019-08-01"

router = APIRouter()


def _refused(status: int, message: str) -> Response:
    return json_answer(status, {"statusCode": status, "message": message})


@router.get(IDENTITY_PATH)
async def msi_token(request: Request, context: Context) -> Response:
    ident = context.material.identity
    secret = request.headers.get("x-identity-header", "")
    if not hmac.compare_digest(secret.encode(), ident.identity_header.encode()):
        return _refused(401, "X-IDENTITY-HEADER is missing or invalid.")
    query = dict(request.query_params.multi_items())
    refused = _query_refusal(query, ident)
    if refused is not None:
        return refused
    issued = tokens.issue(context.material.token_key, ident, query["resource"], context.clock())
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "expires_on": str(issued.expires_on),
            "resource": issued.resource,
            "token_type": "Bearer",
            "client_id": ident.client_id,
        }
    )


def _query_refusal(query: dict[str, str], ident: LocalIdentity) -> Response | None:
    if query.get("api-version") != MSI_API_VERSION:
        return _refused(400, f"api-version must be {MSI_API_VERSION}.")
    if not query.get("resource", ""):
        return _refused(400, "resource is required.")
    for param, mine in (
        ("client_id", ident.client_id),
        ("principal_id", ident.principal_id),
        ("object_id", ident.principal_id),
    ):
        if query.get(param) and query[param].lower() != mine:
            return _refused(400, f"No managed identity found for the specified {param}.")
    if query.get("mi_res_id"):
        return _refused(400, "No managed identity found for the specified mi_res_id.")
    return None
