"""A whole fleetpatch in one test process: real dev server, the local clouds as processes,
every worker role in-process on a fresh task-queue prefix, and the API over ASGI."""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from clients.local import services
from clients.local.supervisor import Supervisor
from config.settings import Settings
from contracts.providers import WorkerRole
from estate import db
from tests.conftest import free_port
from workers.runner import make_worker


@dataclass
class Stack:
    settings: Settings
    client: Client
    api: httpx.AsyncClient
    local: dict[str, Any]  # what local.json would hold
    admin_headers: dict[str, str]

    async def link(self, **body: Any) -> httpx.Response:
        return await self.api.post("/v1/admin/links", json=body, headers=self.admin_headers)

    async def guest(self, name: str, path: str) -> httpx.Response:
        """What the local vCenter's guest tools answer a VM's guest (``bios-uuid``, ``guestinfo/KEY``)."""
        guest = self.local["vcenter"]["guest_tools"].replace("{name}", name)
        async with httpx.AsyncClient() as http:
            return await http.get(f"{guest}/{path}")

    async def plant_token(self, name: str, customer: str, link: str | None = None) -> str:
        """A genuine token of the local vCenter's key for ``customer`` (under ``link``), written by
        hand into the VM ``name``, as someone with vCenter access could."""
        from clouds.vmware.factory import client_for
        from clouds.vmware.token import issue_token

        vcenter = self.local["vcenter"]
        extra = {"link": link} if link else {}

        def plant() -> str:
            with client_for(self.settings.vmware, vcenter["vcenter_id"]) as vsphere:
                vm = vsphere.find_vm_by_name(name)
                token = issue_token(Path(vcenter["signing_key"]).read_text(), vcenter_id=vcenter["vcenter_id"],
                                    instance_uuid=vsphere.vm_facts(vm).instance_uuid, customer=customer,
                                    now=datetime.now(UTC), ttl=timedelta(hours=1), **extra)
                vsphere.write_token(vm, token)
                return token

        return await asyncio.to_thread(plant)


def _port_env() -> dict[str, str]:
    env = {"FLEETPATCH_API__PORT": str(free_port())}
    for name in ("AWS", "GCP", "AZURE_IMDS", "AZURE_ARM", "EC2_IMDS", "VCENTER", "VCENTER_GUEST"):
        env[f"FLEETPATCH_LOCAL__{name}_PORT"] = str(free_port())
    return env


async def start_stack(stack: AsyncExitStack, client: Client, state_dir: Path, prefix: str) -> Stack:
    """Start the local clouds and fleetpatch; everything stops when ``stack`` closes."""
    saved = dict(os.environ)
    os.environ.update(_port_env())
    os.environ["FLEETPATCH_STATE_DIR"] = str(state_dir)
    os.environ["FLEETPATCH_TASK_QUEUE_PREFIX"] = prefix
    os.environ["FLEETPATCH_LOCAL__CREATE_ACCOUNT_DELAY"] = "1"
    # These tests link accounts and then enrol; on a loaded machine a first link can take longer
    # than the API's 10 s admin budget (answered 202). Budgets have tests of their own.
    os.environ["FLEETPATCH_API__ADMIN_BUDGET"] = "120"
    # Every test calls from one address and polls fast: the rate limits have tests of their own.
    os.environ["FLEETPATCH_API__RATE_PER_ADDRESS"] = "0"
    os.environ["FLEETPATCH_API__RATE_PER_INSTANCE"] = "0"
    settings = Settings()
    supervisor = Supervisor(settings, on_event=lambda name, msg: None)
    await supervisor.start_clouds()

    async def stop_clouds() -> None:
        await supervisor.stop()
        os.environ.clear()
        os.environ.update(saved)

    stack.push_async_callback(stop_clouds)
    missing = await supervisor.wait_ready(timeout=120)
    assert not missing, f"local clouds not ready: {missing}"
    os.environ.update(services.shared_env(settings, supervisor.clouds))
    settings = Settings()  # now with every local cloud's endpoints and trust anchors
    db.upgrade(settings.database_url)  # as `fleetpatch up` does before workers and API start
    for role in WorkerRole:
        worker, _ = make_worker(client, role, settings)
        await stack.enter_async_context(worker)
    app = create_app(settings, TemporalGateway.for_client(client))
    api = await stack.enter_async_context(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", timeout=120)
    )
    admin = settings.api.admin_token
    assert admin is not None
    return Stack(
        settings=settings,
        client=client,
        api=api,
        local=services.local_json(settings, supervisor.clouds, supervisor.pids()),
        admin_headers={"Authorization": f"Bearer {admin.get_secret_value()}"},
    )


async def eventually(check, timeout: float = 60, interval: float = 0.5):  # noqa: ANN001, ANN201
    """Await ``check()`` until it returns a truthy value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        await asyncio.sleep(interval)
