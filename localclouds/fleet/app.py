"""The fleet host's HTTP API (loopback only; it plays the customers' side, so no auth).

- ``GET /__fleetpatch/health``
- ``GET /customers?count=K`` -> ``{"links": [...]}``: the admin-API link bodies of K demo customers
- ``POST /vms`` ``{"count": N, "customers": K, "command_duration"?: S, "failure_rate"?: F}`` -> 202
  ``{"vms": [...]}``: boots N VMs over the four clouds and K customers
- ``GET /vms`` -> ``{"vms": [...]}`` with each VM's state (booting, registering, activated,
  agent online, failed) and reason; ``GET /vms/{name}``
- ``PATCH /vms/{name}`` ``{"command_duration", "failure_rate"}``: per-VM behaviour (tests)
- the stand-ins' back end: ``POST /vms/{name}/agent/register`` ``{"id", "code", "region"}``,
  ``POST /vms/{name}/agent/start|stop``, ``GET /vms/{name}/agent``
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from botocore.exceptions import ClientError
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from localclouds.fleet.host import FleetHost

HEALTH_PATH = "/__fleetpatch/health"


class BootRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=1, le=1000)
    customers: int = Field(default=1, ge=1, le=100)
    command_duration: float | None = Field(default=None, ge=0, le=3600)
    failure_rate: float | None = Field(default=None, ge=0, le=1)


class VmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command_duration: float | None = Field(default=None, ge=0, le=3600)
    failure_rate: float | None = Field(default=None, ge=0, le=1)


class Activation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")]
    code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/=]{1,256}$")]
    region: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")]


def _missing(name: str) -> JSONResponse:
    return JSONResponse({"error": "NotFound", "reason": f"no VM named {name}"}, status_code=404)


def create_app(host: FleetHost) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await host.start()
        try:
            yield
        finally:
            await host.stop()

    app = FastAPI(title="fleetpatch simulated fleet", docs_url=None, redoc_url=None,
                  lifespan=lifespan)
    app.state.host = host

    @app.get(HEALTH_PATH)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/customers")
    def links(count: int = Query(1, ge=1, le=100)) -> JSONResponse:
        try:
            return JSONResponse({"links": host.links(count)})
        except (OSError, LookupError, ValueError) as err:
            return JSONResponse({"error": "NotReady", "reason": str(err)}, status_code=503)

    @app.post("/vms", status_code=202)
    async def boot(body: BootRequest) -> JSONResponse:
        try:
            host.endpoints()
        except (OSError, LookupError, ValueError) as err:
            return JSONResponse({"error": "NotReady", "reason": str(err)}, status_code=503)
        created = host.boot(body.count, body.customers, body.command_duration, body.failure_rate)
        return JSONResponse({"vms": [r.view() for r in created]}, status_code=202)

    @app.get("/vms")
    def list_vms() -> dict[str, object]:
        ordered = sorted(host.store.records.values(), key=lambda r: r.number)
        return {"vms": [r.view() for r in ordered]}

    @app.get("/vms/{name}")
    def get_vm(name: str) -> JSONResponse:
        record = host.store.records.get(name)
        return JSONResponse(record.view()) if record else _missing(name)

    @app.patch("/vms/{name}")
    def configure(name: str, body: VmSettings) -> JSONResponse:
        if name not in host.store.records:
            return _missing(name)
        host.configure(name, body.command_duration, body.failure_rate)
        return JSONResponse(host.record(name).view())

    @app.post("/vms/{name}/agent/register")
    async def register(name: str, body: Activation) -> JSONResponse:
        if name not in host.store.records:
            return _missing(name)
        try:
            instance_id = await host.register_agent(name, body.id, body.code, body.region)
        except ClientError as err:
            error = err.response.get("Error", {})
            return JSONResponse({"error": error.get("Code", "ClientError"),
                                 "reason": error.get("Message", "")}, status_code=400)
        return JSONResponse({"instance_id": instance_id})

    @app.post("/vms/{name}/agent/start")
    async def start(name: str) -> JSONResponse:
        if name not in host.store.records:
            return _missing(name)
        try:
            await host.start_agent(name)
        except LookupError as err:
            return JSONResponse({"error": "NotRegistered", "reason": str(err)}, status_code=409)
        return JSONResponse({"active": True})

    @app.post("/vms/{name}/agent/stop")
    async def stop(name: str) -> JSONResponse:
        if name not in host.store.records:
            return _missing(name)
        await host.stop_agent(name)
        return JSONResponse({"active": False})

    @app.get("/vms/{name}/agent")
    def agent_state(name: str) -> JSONResponse:
        if name not in host.store.records:
            return _missing(name)
        agent = host.agents.get(name)
        return JSONResponse({"active": agent is not None,
                             "online": bool(agent and agent.online.is_set()),
                             "last_error": agent.last_error if agent else None})

    return app
