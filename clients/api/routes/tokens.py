"""Read tokens for customers (admin token only; a customer token is answered 403).

POST   /v1/admin/tokens          {"customer", "label"}  201 {"id", "token", "customer", "label"}
GET    /v1/admin/tokens                                 {"tokens": [...]}  (never the tokens themselves)
DELETE /v1/admin/tokens/{id}                            {"id", "revoked": true} | 404

A token is shown once, when issued; the store keeps only its digest.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from clients.api.auth import require_admin
from clients.api.errors import error_response, error_responses
from clients.api.estate_access import store
from clients.api.openapi import links_to
from clients.api.routes.estate import CUSTOMER
from estate import db, tokens

router = APIRouter(prefix="/v1/admin/tokens", tags=["tokens"], dependencies=[Depends(require_admin)])

TOKEN_ID = r"^[A-Za-z0-9_-]{1,64}$"


class IssueBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: str = Field(pattern=CUSTOMER, description="the customer whose rows the token reads")
    label: str = Field(default="", max_length=200)


@router.post("", summary="Issue a read-only token for one customer", status_code=201, operation_id="issueToken",
             responses=error_responses(401, 403),
             openapi_extra=links_to(201, revokeToken={"operationId": "revokeToken", "parameters": {"token_id": "$response.body#/id"}}))
def issue(request: Request, body: IssueBody) -> JSONResponse:
    with db.transaction(store(request)) as opened:
        token_id, token = tokens.issue(opened, body.customer, body.label)
    return JSONResponse({"id": token_id, "token": token, "customer": body.customer, "label": body.label}, 201)


@router.get("", summary="Every read token (ids, customers, labels, dates; never the token)", operation_id="listTokens",
            responses=error_responses(401, 403),
            openapi_extra=links_to(200, revokeToken={"operationId": "revokeToken", "parameters": {"token_id": "$response.body#/tokens/0/id"}}))
def list_tokens(request: Request) -> JSONResponse:
    with db.transaction(store(request)) as opened:
        listed = tokens.list_tokens(opened)
    return JSONResponse({"tokens": jsonable_encoder(listed)})


@router.delete("/{token_id}", summary="Revoke a token", operation_id="revokeToken", responses=error_responses(401, 403, 404))
def revoke(request: Request, token_id: Annotated[str, Path(pattern=TOKEN_ID)]) -> JSONResponse:
    with db.transaction(store(request)) as opened:
        done = tokens.revoke(opened, token_id)
    if not done:
        return error_response("NotFound", f"no token {token_id}", 404)
    return JSONResponse({"id": token_id, "revoked": True})
