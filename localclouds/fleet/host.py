"""The fleet host: boots simulated VMs and runs their agents, on one asyncio loop.

Booting a VM: create it in its local cloud (``provision``), lay out its directory, fetch the
startup script from the API (``GET /v1/startup/{provider}``, as a VM's user data would), and run
it with bash in a minimal environment: the VM's metadata URL, the API URL, its os-release
stand-in, and a PATH whose ``systemctl``, ``dpkg``, ``rpm`` (and, on vSphere,
``vmware-rpctool``) are stand-ins that call back here. The ``amazon-ssm-agent`` stand-in sits in
the VM's own ``bin/``: put there at boot when the VM comes with an agent, else by installing the
local AWS's stand-in package (``install_package``), as the real package installs the agent.
States: booting -> registering -> activated (hybrid) -> agent online, or failed with the
script's reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from contracts.providers import OsFamily, Provider
from localclouds.aws.agent_client import AgentClient
from localclouds.fleet import catalogue, customers, records
from localclouds.fleet.agent import AGENT_VERSION, Agent, AgentSettings, AgentVm, wait_online
from localclouds.fleet.platforms import PLATFORMS
from localclouds.fleet.provision import Endpoints, Provisioner
from localclouds.fleet.records import FleetStore, VmRecord

log = logging.getLogger("fleetpatch.fleet")
BIN_DIR = Path(__file__).resolve().parent / "bin"
AGENT_STANDIN = Path(__file__).resolve().parent / "standins" / "amazon-ssm-agent"
PACKAGE_MAGIC = "fleetpatch stand-in package"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class HostSettings:
    fleet_url: str
    local_json: Path
    poll_interval: float = 5.0
    ping_interval: float = 60.0
    command_duration: float = 2.0
    failure_rate: float = 0.0
    boot_concurrency: int = 6
    script_timeout: float = 900.0
    online_timeout: float = 120.0
    #: how long a booting VM keeps trying to fetch its startup script while the API is down
    script_fetch_deadline: float = 600.0
    script_fetch_retry_cap: float = 15.0


class FleetHost:
    def __init__(self, state_dir: Path, settings: HostSettings,
                 pool: ThreadPoolExecutor | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.settings = settings
        self.pool = pool or ThreadPoolExecutor(max_workers=16, thread_name_prefix="fleet")
        self.store = FleetStore(self.state_dir / "fleet")
        self.agents: dict[str, Agent] = {}
        self._agent_tasks: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self._boots: set[asyncio.Task[None]] = set()
        self._boot_slots = asyncio.Semaphore(settings.boot_concurrency)
        self._provisioner: Provisioner | None = None

    # --- configuration -----------------------------------------------------------------------

    def endpoints(self) -> Endpoints:
        return Endpoints(json.loads(self.settings.local_json.read_text()))

    def provisioner(self) -> Provisioner:
        if self._provisioner is None:
            self._provisioner = Provisioner(self.endpoints(), self.state_dir)
        return self._provisioner

    def agent_settings(self) -> AgentSettings:
        endpoints = self.endpoints()
        return AgentSettings(endpoints.aws, endpoints.region, self.settings.poll_interval,
                             self.settings.ping_interval, self.settings.command_duration,
                             self.settings.failure_rate)

    def links(self, count: int) -> list[dict[str, object]]:
        endpoints = self.endpoints()
        return customers.links(count, endpoints.vcenter_id, endpoints.vcenter_public_key())

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """After a restart the VMs "reboot": agents that ran come back, once local.json says
        the local default is running (``fleetpatch up`` writes it after starting everything)."""
        if any(r.state in (records.ACTIVATED, records.ONLINE) for r in self.store.records.values()):
            task = asyncio.create_task(self._restore_agents())
            self._boots.add(task)
            task.add_done_callback(self._boots.discard)

    async def _restore_agents(self, attempts: int = 90, interval: float = 2.0) -> None:
        for _ in range(attempts):
            try:
                if json.loads(self.settings.local_json.read_text()).get("running", True):
                    self.endpoints()
                    break
            except (OSError, ValueError, LookupError):
                pass
            await asyncio.sleep(interval)
        for record in self.store.records.values():
            if record.state in (records.ACTIVATED, records.ONLINE):
                try:
                    await self.start_agent(record.name)
                except Exception as err:  # noqa: BLE001 - one broken VM must not stop the rest
                    log.warning("agent of %s did not come back: %s", record.name, err)

    async def stop(self) -> None:
        for task in list(self._boots):
            task.cancel()
        for name in list(self._agent_tasks):
            await self.stop_agent(name)

    # --- booting -----------------------------------------------------------------------------

    def boot(self, count: int, customer_count: int, duration: float | None = None,
             failure_rate: float | None = None, without_agent: bool | None = None) -> list[VmRecord]:
        plans = customers.plan(self.store.next_number(), count, customer_count, without_agent=without_agent)
        created = []
        for plan in plans:
            record = VmRecord(plan.name, plan.number, plan.provider.value, plan.customer.name,
                              plan.os.value, plan.patch_group.value if plan.patch_group else None,
                              command_duration=duration, failure_rate=failure_rate,
                              agent_version=AGENT_VERSION if plan.agent_installed else "")
            self.store.records[record.name] = record
            task = asyncio.create_task(self._boot_one(plan, record))
            self._boots.add(task)
            task.add_done_callback(self._boots.discard)
            created.append(record)
        self.store.save()
        return created

    def _fail(self, record: VmRecord, reason: str) -> None:
        record.state, record.reason = records.FAILED, reason[-500:]
        self.store.save()

    async def _boot_one(self, plan: customers.VmPlan, record: VmRecord) -> None:
        async with self._boot_slots:
            try:
                created = await asyncio.get_running_loop().run_in_executor(
                    self.pool, self.provisioner().create, plan)
            except Exception as err:  # noqa: BLE001 - the reason is the VM's state
                self._fail(record, f"creating the VM failed: {type(err).__name__}: {err}")
                return
            record.cloud_account, record.instance_id = created.cloud_account, created.instance_id
            record.instance_key, record.metadata_url = created.instance_key, created.metadata_url
            record.extra = dict(created.extra)
            if plan.provider is Provider.AWS:
                record.extra["account_id"] = created.cloud_account
                record.managed_instance_id = created.instance_id
            self._lay_out(record)
            record.state = records.REGISTERING
            self.store.save()
            await self._run_script(record)

    def _lay_out(self, record: VmRecord) -> None:
        vm_dir = self.store.vm_dir(record.name)
        vm_dir.mkdir(parents=True, exist_ok=True)
        os_family = OsFamily(record.os)
        (vm_dir / "os-release").write_text(PLATFORMS[os_family].os_release())
        if "bios_uuid" in record.extra:
            (vm_dir / "product_uuid").write_text(record.extra["bios_uuid"] + "\n")
        if record.agent_version:
            self._put_agent(record)
        software = vm_dir / "software.json"
        if not software.exists():
            now = datetime.now(UTC)
            initial = catalogue.initial_software(catalogue.build(os_family, now), record.name, now)
            records.write_json_atomic(software, initial.to_json())

    def script_env(self, record: VmRecord) -> dict[str, str]:
        vm_dir = self.store.vm_dir(record.name)
        path = [str(vm_dir / "bin"), str(BIN_DIR)]
        if "rpctool_dir" in record.extra:
            path.append(record.extra["rpctool_dir"])
        env = {
            "PATH": ":".join([*path, SYSTEM_PATH]),
            "HOME": str(vm_dir),
            "LANG": "C.UTF-8",
            "FLEETPATCH_API_URL": self.endpoints().api,
            "FLEETPATCH_METADATA_URL": record.metadata_url,
            "FLEETPATCH_OS_RELEASE": str(vm_dir / "os-release"),
            "FLEETPATCH_HOSTNAME": record.name,
            "FLEETPATCH_FLEET_URL": self.settings.fleet_url,
            "FLEETPATCH_VM_NAME": record.name,
            "FLEETPATCH_RETRY_BASE": "1",
            "FLEETPATCH_RETRY_CAP": "15",
            "FLEETPATCH_MAX_ATTEMPTS": "30",
        }
        if "bios_uuid" in record.extra:
            env["FLEETPATCH_BIOS_UUID_PATH"] = str(vm_dir / "product_uuid")
            env["FLEETPATCH_GUEST_TOOLS_URL"] = record.extra["guest_tools_url"]
        return env

    async def _fetch_script(self, url: str) -> str:
        """GET the startup script as a VM's boot path does: through an API restart (no
        connection, 429, 5xx) with backoff until ``script_fetch_deadline``; other answers fail."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.script_fetch_deadline
        wait = 0.5
        async with httpx.AsyncClient(timeout=30) as http:
            while True:
                try:
                    answer = await http.get(url)
                    if answer.status_code != 429 and answer.status_code < 500:
                        answer.raise_for_status()
                        return answer.text
                    answer.raise_for_status()
                except (httpx.TransportError, httpx.HTTPStatusError) as err:
                    retryable = isinstance(err, httpx.TransportError) or (
                        err.response.status_code == 429 or err.response.status_code >= 500)
                    if not retryable or loop.time() + wait > deadline:
                        raise
                    log.info("startup script not available yet; retrying", extra={"error": str(err)})
                await asyncio.sleep(wait)
                wait = min(wait * 2, self.settings.script_fetch_retry_cap)

    async def _run_script(self, record: VmRecord) -> None:
        vm_dir = self.store.vm_dir(record.name)
        env = self.script_env(record)
        try:
            text = await self._fetch_script(f"{env['FLEETPATCH_API_URL']}/v1/startup/{record.provider}")
        except httpx.HTTPError as err:
            self._fail(record, f"could not download the startup script from the API: {err}")
            return
        script = vm_dir / "startup.sh"
        script.write_text(text)
        (vm_dir / "env").write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
        bash = shutil.which("bash") or "/bin/bash"
        proc = await asyncio.create_subprocess_exec(
            bash, str(script), cwd=vm_dir, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            output, _ = await asyncio.wait_for(proc.communicate(), self.settings.script_timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            self._fail(record, "the startup script did not finish in time")
            return
        except asyncio.CancelledError:  # the fleet host is stopping
            proc.kill()
            await proc.wait()
            raise
        text = output.decode(errors="replace")
        (vm_dir / "boot.log").write_text(text)
        if proc.returncode != 0:
            lines = [line for line in text.splitlines() if line.startswith("fleetpatch:")]
            reason = lines[-1].removeprefix("fleetpatch: ") if lines else text[-300:]
            self._fail(record, f"startup script exited {proc.returncode}: {reason}")
            return
        agent = self.agents.get(record.name)
        if agent is None or not await wait_online(agent, self.settings.online_timeout):
            detail = agent.last_error if agent else "the script never started the agent"
            self._fail(record, f"the SSM agent did not come online: {detail}")
            return
        record.state, record.reason = records.ONLINE, ""
        self.store.save()

    # --- the agent stand-ins' back end -------------------------------------------------------

    def _put_agent(self, record: VmRecord) -> None:
        """The agent on the VM's PATH (``bin/amazon-ssm-agent``), as an installed package has it."""
        target = self.store.vm_dir(record.name) / "bin" / "amazon-ssm-agent"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(AGENT_STANDIN)

    def install_package(self, name: str, package_format: str, body: bytes) -> str:
        """``dpkg -i`` / ``rpm -U`` of the SSM agent: only the local AWS's stand-in package of that
        format is accepted (ValueError otherwise); the VM then has its agent. Its version."""
        record = self.record(name)
        fields = dict(line.split(": ", 1) for line in body.decode(errors="replace").splitlines()[1:] if ": " in line)
        if not body.decode(errors="replace").startswith(PACKAGE_MAGIC + "\n"):
            raise ValueError("not a package this VM can install")
        if fields.get("package") != "amazon-ssm-agent" or fields.get("format") != package_format:
            raise ValueError(f"not a {package_format} package of amazon-ssm-agent")
        if not re.fullmatch(r"[0-9]+(\.[0-9]+){1,3}", fields.get("version", "")):
            raise ValueError("the package has no version")
        record.agent_version = fields["version"]
        self._put_agent(record)
        self.store.save()
        return record.agent_version

    def record(self, name: str) -> VmRecord:
        found = self.store.records.get(name)
        if found is None:
            raise KeyError(name)
        return found

    async def register_agent(self, name: str, activation_id: str, code: str, region: str) -> str:
        """``amazon-ssm-agent -register``: RegisterManagedInstance with a new instance key."""
        record = self.record(name)
        client = AgentClient(self.endpoints().aws, region)
        registration = await asyncio.get_running_loop().run_in_executor(
            self.pool, client.register, activation_id, code)
        self.store.save_registration(name, registration)
        record.managed_instance_id = registration.instance_id
        record.state = records.ACTIVATED
        self.store.save()
        return registration.instance_id

    def _software_saver(self, name: str, vm: AgentVm) -> Any:
        path = self.store.vm_dir(name) / "software.json"
        return lambda: records.write_json_atomic(path, vm.software.to_json())

    async def start_agent(self, name: str) -> Agent:
        """``systemctl (re)start amazon-ssm-agent``: hand the VM to the agent loop."""
        record = self.record(name)
        await self.stop_agent(name)
        software_path = self.store.vm_dir(name) / "software.json"
        software = catalogue.Installed.from_json(json.loads(software_path.read_text()))
        vm = AgentVm(name, PLATFORMS[OsFamily(record.os)], software, save=lambda: None,
                     command_duration=record.command_duration, failure_rate=record.failure_rate,
                     agent_version=record.agent_version or AGENT_VERSION)
        vm.save = self._software_saver(name, vm)
        if record.provider == Provider.AWS.value:
            vm.ec2_instance_id, vm.account_id = record.instance_id, record.extra["account_id"]
        else:
            vm.registration = self.store.load_registration(name)
            if vm.registration is None:
                raise LookupError(f"{name}: amazon-ssm-agent is not registered")
        agent = Agent(vm, self.agent_settings(), self.pool)
        stop = asyncio.Event()
        self.agents[name] = agent
        self._agent_tasks[name] = (asyncio.create_task(agent.run(stop)), stop)
        return agent

    async def stop_agent(self, name: str) -> None:
        running = self._agent_tasks.pop(name, None)
        self.agents.pop(name, None)
        if running is not None:
            task, stop = running
            stop.set()
            await task

    def configure(self, name: str, duration: float | None, failure_rate: float | None) -> None:
        """Per-VM command duration and failure rate (tests), applied to a running agent too."""
        record = self.record(name)
        record.command_duration, record.failure_rate = duration, failure_rate
        self.store.save()
        agent = self.agents.get(name)
        if agent is not None:
            agent.vm.command_duration, agent.vm.failure_rate = duration, failure_rate
