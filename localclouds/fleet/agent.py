"""The simulated SSM agent: many per process, on one asyncio loop and a small thread pool.

Each agent refreshes its role credentials before they expire, pings (UpdateInstanceInformation
with its platform fields), polls ec2messages (GetMessages), acknowledges and executes commands
(``documents``), and answers with SendReply in the real agent's payload shape. A cancel message
(``aws.ssm.cancelCommand``) cancels the run it names; the run answers ``Cancelled``. After each
ping it pulls its State Manager associations (ListInstanceAssociations, DescribeAssociation),
runs those that are due by their schedule (AWS-GatherSoftwareInventory reports the VM's software
with PutInventory) and reports each run (UpdateInstanceAssociationStatus).

Credentials: a hybrid VM's agent holds the registration its ``-register`` made (instance key,
fingerprint) and asks RequestManagedInstanceRoleToken for role credentials; an EC2 VM's agent
is "pre-installed" and uses its instance credentials in the customer's account (STS AssumeRole
into the account's instance role on the local AWS, standing in for the instance profile).

All botocore calls are blocking; they run on the pool, so 200 agents idle at a few requests per
second in total.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx

from localclouds.aws.agent_client import (
    AgentClient,
    AgentSession,
    InstanceKey,
    Registration,
    RoleCredentials,
)
from localclouds.fleet import documents
from localclouds.fleet.catalogue import Installed
from localclouds.fleet.override import MAX_BYTES, OverrideListError, split_s3_url
from localclouds.fleet.platforms import Platform

log = logging.getLogger("fleetpatch.fleet.agent")
AGENT_VERSION = "3.3.1142.0"
EC2_INSTANCE_ROLE = "FleetpatchSimulatedInstanceProfile"
REFRESH_BEFORE = timedelta(minutes=5)


@dataclass
class AgentSettings:
    """Fleet-wide behaviour; a VM may override duration and failure rate."""

    endpoint: str
    region: str
    poll_interval: float = 5.0
    ping_interval: float = 60.0
    command_duration: float = 2.0
    failure_rate: float = 0.0


@dataclass
class AgentVm:
    """What an agent knows about its VM (the fleet host keeps and persists the rest)."""

    name: str
    platform: Platform
    software: Installed
    save: Callable[[], None]
    registration: Registration | None = None  # hybrid
    ec2_instance_id: str | None = None  # EC2
    account_id: str | None = None  # EC2: the customer's account
    command_duration: float | None = None
    failure_rate: float | None = None
    agent_version: str = AGENT_VERSION  # what the VM's installed agent package says

    @property
    def ip_address(self) -> str:
        digest = zlib.crc32(self.name.encode())
        return f"10.{digest >> 16 & 0xFF}.{digest >> 8 & 0xFF}.{digest & 0xFF or 1}"


class Agent:
    def __init__(self, vm: AgentVm, settings: AgentSettings, pool: ThreadPoolExecutor,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.vm = vm
        self.settings = settings
        self.pool = pool
        self.clock = clock
        self.session: AgentSession | None = None
        self.online = asyncio.Event()
        self.running: dict[str, asyncio.Task[None]] = {}
        self.last_error: str | None = None
        self._rng = random.Random(vm.name)
        self.association_runs: dict[str, datetime] = {}  # association id -> last run
        self._associating: asyncio.Task[None] | None = None

    async def blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: fn(*args, **kwargs))

    # --- credentials and ping ----------------------------------------------------------------

    def _new_session(self) -> AgentSession:
        client = AgentClient(self.settings.endpoint, self.settings.region)
        if self.vm.registration is not None:
            return client.session(self.vm.registration)
        assert self.vm.ec2_instance_id and self.vm.account_id
        sts = boto3.client("sts", region_name=self.settings.region,
                           endpoint_url=self.settings.endpoint,
                           aws_access_key_id="AKIAFLEETPATCHSIMVM00",
                           aws_secret_access_key="fleetpatch-simulated-vm")
        creds = sts.assume_role(
            RoleArn=f"arn:aws:iam::{self.vm.account_id}:role/{EC2_INSTANCE_ROLE}",
            RoleSessionName=self.vm.ec2_instance_id)["Credentials"]
        registration = Registration(self.vm.ec2_instance_id, self.settings.region, "",
                                    InstanceKey("", ""))
        return AgentSession(client, registration, RoleCredentials(
            creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"],
            creds["Expiration"]))

    async def refresh(self) -> None:
        if self.session is None or self.session.credentials.expiration - REFRESH_BEFORE <= (
            self.clock()
        ):
            self.session = await self.blocking(self._new_session)

    async def ping(self) -> None:
        assert self.session is not None
        p = self.vm.platform
        await self.blocking(self.session.update_instance_information, AgentVersion=self.vm.agent_version,
                            AgentName="amazon-ssm-agent", PlatformName=p.platform_name,
                            PlatformType=p.platform_type, PlatformVersion=p.platform_version,
                            ComputerName=self.vm.name, IPAddress=self.vm.ip_address)
        self.online.set()

    # --- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: ping on schedule, poll, dispatch. Errors back off, never end the loop."""
        next_ping = 0.0
        failures = 0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await self.refresh()
                if loop.time() >= next_ping:
                    await self.ping()
                    next_ping = loop.time() + self.settings.ping_interval
                    await self.check_associations()
                assert self.session is not None
                for message in await self.blocking(self.session.get_messages):
                    await self.dispatch(message)
                failures, self.last_error = 0, None
            except Exception as err:  # noqa: BLE001 - an agent keeps trying, like the real one
                failures += 1
                self.last_error = f"{type(err).__name__}: {err}"
                log.warning("agent %s: %s", self.vm.name, self.last_error)
                if "Expired" in self.last_error or "Unrecognized" in self.last_error:
                    self.session = None
            wait = self.settings.poll_interval * (1 + 0.2 * self._rng.random())
            if failures:
                wait = min(60.0, wait * 2 ** min(failures, 5))
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass
        for task in self.running.values():
            task.cancel()
        if self._associating is not None:
            self._associating.cancel()

    # --- State Manager associations ----------------------------------------------------------

    async def check_associations(self) -> None:
        """Pull the associations that target this instance and apply those that are due (in the
        background: polling for commands goes on meanwhile)."""
        if self._associating is not None and not self._associating.done():
            return
        session = self.session
        assert session is not None
        due = []
        for entry in await self.blocking(session.list_instance_associations):
            association_id = entry["AssociationId"]
            described = (await self.blocking(session.ssm.describe_association,
                                             AssociationId=association_id))["AssociationDescription"]
            if association_due(self.association_runs.get(association_id),
                               described.get("ScheduleExpression"), self.clock()):
                due.append(described)
        if due:
            self._associating = asyncio.create_task(self._apply_associations(session, due))

    async def _apply_associations(self, session: AgentSession, due: list[dict[str, Any]]) -> None:
        for described in due:
            association_id = described["AssociationId"]
            self.association_runs[association_id] = self.clock()
            try:
                result = await documents.run(described["Name"], described.get("Parameters") or {},
                                             self._execution(session, fail=False))
                status, summary = result.status, "; ".join(p.output for p in result.plugins)
            except Exception as err:  # noqa: BLE001 - a failed run is reported, not raised
                status, summary = "Failed", f"{type(err).__name__}: {err}"
            await self.blocking(session.update_instance_association_status, association_id,
                                status, self.clock(), summary[:512])

    def _execution(self, session: AgentSession, fail: bool) -> documents.Execution:
        duration = self.vm.command_duration if self.vm.command_duration is not None else (
            self.settings.command_duration)
        return documents.Execution(
            session=session, software=self.vm.software, platform_type=self.vm.platform.platform_type,
            duration=duration, fail=fail, blocking=self.blocking,
            fetch_override=self.fetch_override, save=self.vm.save, clock=self.clock)

    async def dispatch(self, message: dict[str, Any]) -> None:
        assert self.session is not None
        topic, message_id = message["Topic"], message["MessageId"]
        payload = json.loads(message["Payload"])
        await self.blocking(self.session.acknowledge_message, message_id)
        if topic.startswith("aws.ssm.cancelCommand"):
            target = self.running.get(payload.get("CancelMessageId", ""))
            if target is not None:
                target.cancel()
            return
        if not topic.startswith("aws.ssm.sendCommand") or message_id in self.running:
            await self.blocking(self.session.fail_message, message_id, "NoHandlerExists")
            return
        task = asyncio.create_task(self.execute(message_id, payload))
        self.running[message_id] = task
        task.add_done_callback(lambda _: self.running.pop(message_id, None))

    async def execute(self, message_id: str, payload: dict[str, Any]) -> None:
        session = self.session
        assert session is not None
        started = self.clock()
        name = payload.get("DocumentName", "")
        rate = self.vm.failure_rate if self.vm.failure_rate is not None else (
            self.settings.failure_rate)
        execution = self._execution(session, fail=self._rng.random() < rate)
        try:
            result = await documents.run(name, payload.get("Parameters") or {}, execution)
            plugins = result.plugins
        except asyncio.CancelledError:
            await self._reply(session, message_id, "Cancelled",
                              [documents.PluginResult(name, "Cancelled", 1, "Cancelled")], started)
            return
        except Exception as err:  # noqa: BLE001 - a broken run fails the command, not the agent
            plugins = [documents.PluginResult(name or "unknown", "Failed", 1, f"{err}")]
        status = "Failed" if any(p.status == "Failed" for p in plugins) else "Success"
        await self._reply(session, message_id, status, plugins, started)

    async def _reply(self, session: AgentSession, message_id: str, status: str,
                     plugins: list[documents.PluginResult], started: datetime) -> None:
        ended = self.clock()
        runtime = {p.name: {"status": p.status, "code": p.code, "name": p.name, "output": p.output,
                            "standardOutput": p.output, "standardError": "",
                            "startDateTime": started.isoformat(), "endDateTime": ended.isoformat()}
                   for p in plugins}
        payload = {
            "additionalInfo": {"agent": {"lang": "en-US", "name": "amazon-ssm-agent",
                                         "os": self.vm.platform.platform_name,
                                         "osver": self.vm.platform.platform_version,
                                         "ver": self.vm.agent_version},
                               "dateTime": ended.isoformat(), "runId": "",
                               "runtimeStatusCounts": {status: len(plugins)}},
            "documentStatus": status, "documentTraceOutput": "", "runtimeStatus": runtime,
        }
        await self.blocking(session.send_reply, message_id, payload)

    async def fetch_override(self, url: str) -> bytes:
        """The install override list: s3:// with this agent's credentials, or https://."""
        try:
            if url.startswith("s3://"):
                bucket, key = split_s3_url(url)
                assert self.session is not None
                creds = self.session.credentials
                s3 = boto3.client("s3", region_name=self.settings.region,
                                  endpoint_url=self.settings.endpoint,
                                  aws_access_key_id=creds.access_key_id,
                                  aws_secret_access_key=creds.secret_access_key,
                                  aws_session_token=creds.session_token)
                answer = await self.blocking(s3.get_object, Bucket=bucket, Key=key)
                return await self.blocking(answer["Body"].read, MAX_BYTES + 1)
            if url.startswith("https://"):
                async with httpx.AsyncClient(timeout=30) as http:
                    response = await http.get(url)
                    response.raise_for_status()
                    return response.content[: MAX_BYTES + 1]
        except OverrideListError:
            raise
        except Exception as err:  # noqa: BLE001 - any fetch failure fails the Install
            raise OverrideListError(f"cannot read the install override list {url}: {err}") from err
        raise OverrideListError(f"the install override list must be an https:// or s3:// URL, "
                                f"not {url!r}")


def association_due(last_run: datetime | None, schedule: str | None, now: datetime) -> bool:
    """Never run: due. ``rate(N minutes|hours|days)``: due N after the last run; a cron
    schedule: daily; no schedule: once."""
    if last_run is None:
        return True
    match = re.fullmatch(r"rate\((\d+) (minute|hour|day)s?\)", (schedule or "").strip())
    if match:
        unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2)]
        return now - last_run >= timedelta(seconds=int(match.group(1)) * unit)
    if schedule:
        return now - last_run >= timedelta(days=1)
    return False


async def wait_online(agent: Agent, timeout: float) -> bool:
    try:
        await asyncio.wait_for(agent.online.wait(), timeout)
    except TimeoutError:
        return False
    return True

