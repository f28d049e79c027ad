"""What each worker role runs. A role imports only its own cloud's SDK, lazily, here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import Client

from activities.health import HealthActivities
from config.settings import Settings
from contracts.providers import WorkerRole


@dataclass
class WorkerParts:
    activities: list[Callable[..., Any]] = field(default_factory=list)
    workflows: list[type] = field(default_factory=list)
    #: Thread pool size for synchronous activities (SDKs without asyncio); 0 = none needed.
    sync_threads: int = 0
    #: Run once when the worker starts (best effort: a failure is logged, the worker still runs).
    on_start: list[Callable[[], Awaitable[object]]] = field(default_factory=list)


def _orchestrator(settings: Settings, client: Client) -> WorkerParts:
    from activities.schedules import ScheduleActivities
    from activities.temporal_ops import TemporalActivities
    from workflows.registry import ALL_WORKFLOWS

    from scheduling.compliance import ensure_sync_schedule

    parts = WorkerParts(
        workflows=list(ALL_WORKFLOWS),
        activities=[*TemporalActivities(client).all(), *ScheduleActivities(client, settings.patching).all()],
    )
    if settings.compliance.schedule:
        parts.on_start.append(lambda: ensure_sync_schedule(client, settings.compliance, settings.task_queue_prefix))
    return parts


def _aws(settings: Settings, client: Client) -> WorkerParts:
    from activities.aws import AwsActivities
    from activities.compliance import ComplianceActivities
    from activities.evidence import EvidenceActivities
    from activities.patching import PatchingActivities
    from activities.reconcile import ReconcileActivities
    from activities.remote_access import RemoteAccessActivities
    from estate.db import engine_from_settings, sessions

    sealing = settings.sealing_key.get_secret_value() if settings.sealing_key else None
    store = sessions(engine_from_settings(settings))  # the estate store: only activities write it
    return WorkerParts(
        activities=AwsActivities(settings.aws, sealing_key=sealing).all()
        + PatchingActivities(settings.aws, settings.patching).all()
        + ReconcileActivities(settings.aws, store=store).all()
        + ComplianceActivities(settings.aws, store).all()
        + EvidenceActivities(store).all()
        + RemoteAccessActivities(settings.aws, settings.patching).all(),
        sync_threads=16,
    )


def _gcp(settings: Settings, client: Client) -> WorkerParts:
    from activities.gcp import GcpActivities

    return WorkerParts(activities=GcpActivities(settings.gcp).all(), sync_threads=8)


def _azure(settings: Settings, client: Client) -> WorkerParts:
    from activities.azure import AzureActivities

    key = settings.api.challenge_key
    return WorkerParts(
        activities=AzureActivities(settings.azure, key.get_secret_value().encode() if key else None).all(),
        sync_threads=8,
    )


def _vmware(settings: Settings, client: Client) -> WorkerParts:
    from activities.vmware import VmwareActivities

    return WorkerParts(activities=VmwareActivities(settings.vmware).all(), sync_threads=8)


def _ec2(settings: Settings, client: Client) -> WorkerParts:
    from activities.ec2 import Ec2Activities

    return WorkerParts(activities=Ec2Activities(settings).all(), sync_threads=8)


_BUILDERS: dict[WorkerRole, Callable[[Settings, Client], WorkerParts]] = {
    WorkerRole.ORCHESTRATOR: _orchestrator,
    WorkerRole.AWS: _aws,
    WorkerRole.GCP: _gcp,
    WorkerRole.AZURE: _azure,
    WorkerRole.VMWARE: _vmware,
    WorkerRole.EC2: _ec2,
}


def build(role: WorkerRole, settings: Settings, task_queue: str, client: Client) -> WorkerParts:
    parts = _BUILDERS[role](settings, client)
    parts.activities.append(HealthActivities(role, task_queue).ping)
    return parts
