"""The codec server for the Temporal Web UI: ``POST /codec/encode`` and ``POST /codec/decode``.

The UI (started with ``--ui-codec-endpoint {api}/codec``, or an operator's UI with that codec
server configured) sends ``{"payloads": [...]}`` in Temporal's JSON form and shows the decoded
payloads. Only an admin may call it: the bearer admin token, or in a browser where an admin signed in
to the dashboard, that session's cookie (the UI's "include cross-origin credentials"); browsers may
call it only from the configured UI origins (CORS, ``FLEETPATCH_CODEC__UI_ORIGINS``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from clients.api.auth import require_admin_or_session
from clients.api.errors import error_response
from config.codec import CodecError, EncryptionCodec
from config.settings import Settings
from config.temporal import payload_codec

MAX_BODY = 4 * 1024 * 1024
router = APIRouter(prefix="/codec", tags=["codec"], dependencies=[Depends(require_admin_or_session)])

#: Temporal's JSON form of a payload's bytes: base64, either alphabet, padding optional.
B64 = r"^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$"
_BYTES = {"type": "string", "pattern": B64}
_PAYLOAD = {"type": "object", "additionalProperties": False, "properties": {
    "metadata": {"type": "object", "additionalProperties": _BYTES}, "data": _BYTES}}
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["payloads"], "additionalProperties": False,
    "properties": {"payloads": {"type": "array", "items": _PAYLOAD}},
}}}}}
_SHAPE = "payloads: send {\"payloads\": [{\"metadata\": {name: base64}, \"data\": base64}]}"


def install(app: FastAPI, settings: Settings) -> None:
    """The codec routes, their key ring and the UI origins allowed to call them."""
    app.state.codec = payload_codec(settings.codec)
    app.include_router(router)
    if settings.codec.ui_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.codec.ui_origins,
            allow_methods=["POST"],
            allow_headers=["Authorization", "Content-Type", "X-Namespace"],
            # The UI's "include cross-origin credentials": an admin's dashboard session (cookie
            # scoped to /codec, SameSite=Strict) authenticates the browser's calls.
            allow_credentials=True,
        )


@router.post("/encode", summary="Encrypt payloads (Temporal codec server)", openapi_extra=_BODY)
async def encode(request: Request) -> JSONResponse:
    return await _apply(request, lambda codec, payloads: codec.encode(payloads))


@router.post("/decode", summary="Decrypt payloads (Temporal codec server)", openapi_extra=_BODY)
async def decode(request: Request) -> JSONResponse:
    return await _apply(request, lambda codec, payloads: codec.decode(payloads))


async def _apply(request: Request, operation: Any) -> JSONResponse:
    codec: EncryptionCodec | None = request.app.state.codec
    if codec is None:
        return error_response("ConfigurationInvalid", "no payload codec key is configured", 503)
    body = await request.body()
    if len(body) > MAX_BODY:
        return error_response("PayloadTooLarge", f"payloads: over {MAX_BODY} bytes", 413)
    try:
        document = json.loads(body or b"null")
        if not _well_formed(document):
            raise ValueError
        payloads = json_format.ParseDict(document, Payloads())
    except (ValueError, json_format.ParseError):
        return error_response("BadRequest", _SHAPE, 400)
    try:
        result = await operation(codec, list(payloads.payloads))
    except CodecError as err:
        return error_response("PayloadUndecodable", f"payloads: {err}", 400)
    answer = json_format.MessageToDict(Payloads(payloads=result))
    answer.setdefault("payloads", [])
    return JSONResponse(answer)


def _well_formed(document: Any) -> bool:
    """The body as the document describes it, exactly (protobuf's parser alone is laxer about base64)."""
    if not isinstance(document, dict) or set(document) != {"payloads"} or not isinstance(document["payloads"], list):
        return False
    return all(_payload_ok(payload) for payload in document["payloads"])


def _payload_ok(payload: Any) -> bool:
    if not isinstance(payload, dict) or set(payload) - {"metadata", "data"}:
        return False
    metadata = payload.get("metadata", {})
    values = [*metadata.values(), payload.get("data", "")] if isinstance(metadata, dict) else [None]
    return all(isinstance(value, str) and re.fullmatch(B64, value) for value in values)
