"""The fleet host's HTTP API (loopback only; it plays the customers' side, so no auth).

- ``GET /__fleetpatch/health``
- ``GET /customers?count=K`` -> ``{"links": [...]}``: the admin-API link bodies of K demo customers
- ``POST /vms`` ``{"count": N, "customers": K, "command_duration"?: S, "failure_rate"?: F,
  "without_agent"?: B}`` -> 202 ``{"vms": [...]}``: boots N VMs over the four clouds and K
  customers (``without_agent``: true boots every Linux VM outside EC2 without an SSM agent, false
  none; by default every sixth)
- ``GET /vms`` -> ``{"vms": [...]}`` with each VM's state (booting, registering, activated,
  agent online, failed) and reason; ``GET /vms/{name}``
- ``PATCH /vms/{name}`` ``{"command_duration", "failure_rate"}``: per-VM behaviour (tests)
- the stand-ins' back end: ``POST /vms/{name}/agent/register`` ``{"id", "code", "region"}``,
  ``POST /vms/{name}/agent/start|stop``, ``GET /vms/{name}/agent``, and ``POST
  /vms/{name}/packages?format=deb|rpm`` (the package file as the body: ``dpkg -i``/``rpm -U``)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from botocore.exceptions import ClientError
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from localclouds.fleet.host import FleetHost
from localclouds.serving import emulator_app


class BootRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=1, le=1000)
    customers: int = Field(default=1, ge=1, le=100)
    command_duration: float | None = Field(default=None, ge=0, le=3600)
    failure_rate: float | None = Field(default=None, ge=0, le=1)
    without_agent: bool | None = None


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


def _host(request: Request) -> FleetHost:
    return request.app.state.host


#: A route parameter of this type receives the app's fleet host.
Host = Annotated[FleetHost, Depends(_host)]


def _not_ready(err: Exception) -> JSONResponse:
    return JSONResponse({"error": "NotReady", "reason": str(err)}, status_code=503)


customers = APIRouter()


@customers.get("/customers")
def links(host: Host, count: int = Query(1, ge=1, le=100)) -> JSONResponse:
    try:
        return JSONResponse({"links": host.links(count)})
    except (OSError, LookupError, ValueError) as err:
        return _not_ready(err)


vms = APIRouter()


@vms.post("/vms", status_code=202)
async def boot(body: BootRequest, host: Host) -> JSONResponse:
    try:
        host.endpoints()
    except (OSError, LookupError, ValueError) as err:
        return _not_ready(err)
    created = host.boot(body.count, body.customers, body.command_duration, body.failure_rate, body.without_agent)
    return JSONResponse({"vms": [r.view() for r in created]}, status_code=202)


@vms.get("/vms")
def list_vms(host: Host) -> dict[str, object]:
    ordered = sorted(host.store.records.values(), key=lambda r: r.number)
    return {"vms": [r.view() for r in ordered]}


@vms.get("/vms/{name}")
def get_vm(name: str, host: Host) -> JSONResponse:
    record = host.store.records.get(name)
    return JSONResponse(record.view()) if record else _missing(name)


@vms.patch("/vms/{name}")
def configure(name: str, body: VmSettings, host: Host) -> JSONResponse:
    if name not in host.store.records:
        return _missing(name)
    host.configure(name, body.command_duration, body.failure_rate)
    return JSONResponse(host.record(name).view())


agents = APIRouter(prefix="/vms/{name}/agent")


@agents.post("/register")
async def register(name: str, body: Activation, host: Host) -> JSONResponse:
    if name not in host.store.records:
        return _missing(name)
    try:
        instance_id = await host.register_agent(name, body.id, body.code, body.region)
    except ClientError as err:
        error = err.response.get("Error", {})
        return JSONResponse({"error": error.get("Code", "ClientError"),
                             "reason": error.get("Message", "")}, status_code=400)
    return JSONResponse({"instance_id": instance_id})


@vms.post("/vms/{name}/packages")
async def install_package(name: str, request: Request, host: Host,
                          format: Literal["deb", "rpm"] = Query(...)) -> JSONResponse:  # noqa: A002
    if name not in host.store.records:
        return _missing(name)
    body = await request.body()
    if len(body) > 1 << 20:
        return JSONResponse({"error": "TooLarge", "reason": "not an agent stand-in package"}, status_code=400)
    try:
        version = host.install_package(name, format, body)
    except ValueError as err:
        return JSONResponse({"error": "NotInstallable", "reason": str(err)}, status_code=400)
    return JSONResponse({"package": "amazon-ssm-agent", "version": version})


@agents.post("/start")
async def start(name: str, host: Host) -> JSONResponse:
    if name not in host.store.records:
        return _missing(name)
    try:
        await host.start_agent(name)
    except LookupError as err:
        return JSONResponse({"error": "NotRegistered", "reason": str(err)}, status_code=409)
    return JSONResponse({"active": True})


@agents.post("/stop")
async def stop(name: str, host: Host) -> JSONResponse:
    if name not in host.store.records:
        return _missing(name)
    await host.stop_agent(name)
    return JSONResponse({"active": False})


@agents.get("")
def agent_state(name: str, host: Host) -> JSONResponse:
    if name not in host.store.records:
        return _missing(name)
    agent = host.agents.get(name)
    return JSONResponse({"active": agent is not None,
                         "online": bool(agent and agent.online.is_set()),
                         "last_error": agent.last_error if agent else None})


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    host: FleetHost = app.state.host
    await host.start()
    try:
        yield
    finally:
        await host.stop()


def create_app(host: FleetHost) -> FastAPI:
    return emulator_app(
        "fleetpatch simulated fleet", [customers, vms, agents], lifespan=_lifespan, host=host
    )
