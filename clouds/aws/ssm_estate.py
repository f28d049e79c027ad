"""What SSM knows about one systems account, read for the estate store.

``SsmEstateReader`` makes the calls (DescribeInstanceInformation, ListTagsForResource for hybrid
instances, EC2 DescribeInstances for the tags of EC2 nodes, DescribeInstancePatchStates in chunks of 50 ids and pages, DescribeInstancePatches per
instance, GetInventory for ``AWS:Application``, GetPatchBaseline per baseline in use);
``parts`` reads an account a few hundred instances at a time, so a sync's memory does not grow
with the account; ``build_snapshot`` turns the answers into an ``AccountSnapshot`` (pure, tested without AWS).

The tenant of every row comes from the systems account (the Organizations tags fleetpatch wrote
when it vended the account, or the link of a customer's own AWS account), never from an
instance's own tags, which only name the instance (instance key, enrollment run, patch group).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clouds.aws.errors import aws_call
from clouds.aws.sessions import AwsSessions
from contracts import ids
from contracts.compliance import RecordWindowInput, SyncTarget
from contracts.enrollment import TAG_ENROLLMENT_ID, TAG_INSTANCE_KEY, TAG_PATCH_GROUP, AccountRef
from contracts.estate import (
    AccountSnapshot,
    BaselineRecord,
    InstanceSnapshot,
    PatchRecord,
    PatchState,
    SoftwareItem,
    WindowRunRecord,
)
from contracts.identity import instance_key
from contracts.providers import Provider

#: DescribeInstancePatchStates takes at most 50 instance ids per call.
STATE_CHUNK = 50
#: Instances a sync reads (and writes) at a time.
PART_SIZE = 200
#: GetInventory takes at most 40 values in a filter.
INVENTORY_FILTER_VALUES = 40
INVENTORY_INSTANCE_ID = "AWS:InstanceInformation.InstanceId"
#: SSM's patch states -> the store's.
STATES = {
    "INSTALLED": PatchState.INSTALLED, "INSTALLED_OTHER": PatchState.INSTALLED_OTHER,
    "INSTALLED_PENDING_REBOOT": PatchState.INSTALLED_PENDING_REBOOT,
    "INSTALLED_REJECTED": PatchState.INSTALLED_REJECTED, "MISSING": PatchState.MISSING,
    "FAILED": PatchState.FAILED, "NOT_APPLICABLE": PatchState.NOT_APPLICABLE,
}
OTHER_STATE = "AvailableSecurityUpdate"  # AVAILABLE_SECURITY_UPDATE: not approved, not exposed

Progress = Callable[[str], None]


@dataclass
class AccountReading:
    """The raw answers of one account, as SSM gave them."""

    infos: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # instance -> tags
    states: dict[str, dict[str, Any]] = field(default_factory=dict)  # instance -> patch state
    patches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # instance -> patches
    applications: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> GetPatchBaseline


class SsmEstateReader:
    def __init__(self, sessions: AwsSessions) -> None:
        self._sessions = sessions

    def _ssm(self, account: AccountRef) -> Any:
        return self._sessions.in_account("ssm", account.role_arn, account.external_id, account.region)

    @staticmethod
    def _pages(ssm: Any, operation: str, action: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        with aws_call(f"ssm:{action}"):
            yield from ssm.get_paginator(operation).paginate(**kwargs)

    def patch_states(self, account: AccountRef, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
        """DescribeInstancePatchStates for these instances (chunks of 50, every page)."""
        ssm = self._ssm(account)
        states: dict[str, dict[str, Any]] = {}
        for start in range(0, len(instance_ids), STATE_CHUNK):
            for page in self._pages(ssm, "describe_instance_patch_states", "DescribeInstancePatchStates",
                                    InstanceIds=instance_ids[start:start + STATE_CHUNK], PaginationConfig={"PageSize": 50}):
                states.update({s["InstanceId"]: s for s in page.get("InstancePatchStates", [])})
        return states

    def ec2_tags(self, account: AccountRef, instance_ids: list[str]) -> dict[str, dict[str, str]]:
        """An EC2 node's tags are its EC2 tags (SSM keeps none of its own for ``i-`` ids): read
        them with DescribeInstances in the same account (a filter, so a terminated id is no error)."""
        if not instance_ids:
            return {}
        ec2 = self._sessions.in_account("ec2", account.role_arn, account.external_id, account.region)
        tags: dict[str, dict[str, str]] = {}
        for start in range(0, len(instance_ids), 200):
            chunk = instance_ids[start:start + 200]
            with aws_call("ec2:DescribeInstances"):
                pages = ec2.get_paginator("describe_instances").paginate(
                    Filters=[{"Name": "instance-id", "Values": chunk}])
                for page in pages:
                    for reservation in page.get("Reservations", []):
                        for instance in reservation.get("Instances", []):
                            tags[instance["InstanceId"]] = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        return tags

    def parts(self, account: AccountRef, progress: Progress = lambda _: None,
              size: int = PART_SIZE) -> Iterator[AccountReading]:
        """The account ``size`` instances at a time, in DescribeInstanceInformation's order: a part
        holds its instances' tags, patch states, patches and software, and the baselines no earlier
        part named; what the caller keeps, not the account's size, sets the memory it takes."""
        ssm = self._ssm(account)
        seen: set[str] = set()
        infos: list[dict[str, Any]] = []
        for page in self._pages(ssm, "describe_instance_information", "DescribeInstanceInformation",
                                PaginationConfig={"PageSize": 50}):
            infos += page.get("InstanceInformationList", [])
            while len(infos) >= size:
                yield self._part(ssm, account, infos[:size], seen, progress)
                infos = infos[size:]
        if infos:
            yield self._part(ssm, account, infos, seen, progress)

    def _part(self, ssm: Any, account: AccountRef, infos: list[dict[str, Any]], seen: set[str],
              progress: Progress) -> AccountReading:
        reading = AccountReading(infos=infos)
        ids_ = [i["InstanceId"] for i in infos]
        for info in infos:
            if info.get("ResourceType", "ManagedInstance") == "ManagedInstance":
                with aws_call("ssm:ListTagsForResource"):
                    listed = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=info["InstanceId"])
                reading.tags[info["InstanceId"]] = {t["Key"]: t["Value"] for t in listed.get("TagList", [])}
        reading.tags.update(self.ec2_tags(account, [i["InstanceId"] for i in infos
                                                     if i.get("ResourceType") == "EC2Instance"]))
        reading.states = self.patch_states(account, ids_)
        progress(f"{len(ids_)} instances, {len(reading.states)} patch states")
        for instance_id in ids_:
            rows: list[dict[str, Any]] = []
            for page in self._pages(ssm, "describe_instance_patches", "DescribeInstancePatches",
                                    InstanceId=instance_id, PaginationConfig={"PageSize": 100}):
                rows += page.get("Patches", [])
            reading.patches[instance_id] = rows
            progress(instance_id)
        reading.applications = self.applications(ssm, ids_)
        for baseline_id in sorted({s["BaselineId"] for s in reading.states.values() if s.get("BaselineId")} - seen):
            with aws_call("ssm:GetPatchBaseline"):
                reading.baselines[baseline_id] = ssm.get_patch_baseline(BaselineId=baseline_id)
            seen.add(baseline_id)
        return reading

    def applications(self, ssm: Any, instance_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """GetInventory's ``AWS:Application`` of these instances (a filter of 40 ids a call)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(instance_ids), INVENTORY_FILTER_VALUES):
            chunk = instance_ids[start:start + INVENTORY_FILTER_VALUES]
            for page in self._pages(ssm, "get_inventory", "GetInventory",
                                    Filters=[{"Key": INVENTORY_INSTANCE_ID, "Values": chunk, "Type": "Equal"}],
                                    ResultAttributes=[{"TypeName": "AWS:Application"}],
                                    PaginationConfig={"PageSize": 50}):
                for entity in page.get("Entities", []):
                    found[entity["Id"]] = (entity.get("Data", {}).get("AWS:Application") or {}).get("Content", [])
        return found


def window_runs(inp: RecordWindowInput, states: dict[str, dict[str, Any]]) -> list[WindowRunRecord]:
    """Each instance's result in a window run; counts and end time from its re-read patch state
    (an instance the run never reached keeps no end time, so its stored state stays as it was)."""
    runs = []
    for row in inp.instances:
        state = states.get(row.instance_id)
        runs.append(WindowRunRecord(
            window_workflow_id=inp.window_workflow_id, run_id=inp.run_id,
            systems_account=inp.account.account_id, patch_group=inp.patch_group,
            managed_instance_id=row.instance_id, status=str(row.status),
            outcome=inp.outcome,
            installed=int(state.get("InstalledCount", 0)) if state else row.installed,
            missing=int(state.get("MissingCount", 0)) if state else row.missing,
            failed=int(state.get("FailedCount", 0)) if state else row.failed,
            ended=state.get("OperationEndTime") if state else None,
            os=row.os or None, held=bool(row.os) and row.os in inp.held_os,
            baseline_id=(state.get("BaselineId") or None) if state else None,
        ))
    return runs


def build_snapshot(target: SyncTarget, taken_at: datetime, reading: AccountReading) -> AccountSnapshot:
    """The estate rows of one systems account (pure)."""
    account = target.account.account_id
    snapshot = AccountSnapshot(systems_account=account, taken_at=taken_at)
    for info in reading.infos:
        instance_id = info["InstanceId"]
        snapshot.instances.append(
            _instance(target, info, reading.tags.get(instance_id, {}), reading.states.get(instance_id))
        )
        snapshot.patches += [_patch(instance_id, p) for p in reading.patches.get(instance_id, [])]
        snapshot.software += [
            SoftwareItem(managed_instance_id=instance_id, name=str(app.get("Name", "")),
                         version=app.get("Version") or None, publisher=app.get("Publisher") or None,
                         architecture=app.get("Architecture") or None)
            for app in reading.applications.get(instance_id, []) if app.get("Name")
        ]
    snapshot.baselines = [_baseline(b) for _, b in sorted(reading.baselines.items())]
    return snapshot


def _instance(target: SyncTarget, info: dict[str, Any], tags: dict[str, str],
              state: dict[str, Any] | None) -> InstanceSnapshot:
    instance_id = info["InstanceId"]
    provider = target.provider or None
    key = tags.get(TAG_INSTANCE_KEY)
    if key is None and info.get("ResourceType") == "EC2Instance" and target.cloud_account:
        key = instance_key(target.cloud_account, instance_id)  # EC2: the account's own instance
    row = InstanceSnapshot(
        managed_instance_id=instance_id,
        systems_account=target.account.account_id,
        instance_key=key,
        provider=provider,
        customer=target.customer or None,
        cloud_account=target.cloud_account or None,
        patch_group=tags.get(TAG_PATCH_GROUP) or (state or {}).get("PatchGroup") or None,
        os_name=info.get("PlatformName"),
        os_version=info.get("PlatformVersion"),
        platform_type=info.get("PlatformType"),
        agent_version=info.get("AgentVersion"),
        ping_status=info.get("PingStatus"),
        last_seen=info.get("LastPingDateTime"),
        workflow_id=ids.enrollment(Provider(provider), key) if provider and key else None,
        workflow_run_id=tags.get(TAG_ENROLLMENT_ID),
    )
    if state:
        row.installed = int(state.get("InstalledCount", 0))
        row.installed_other = int(state.get("InstalledOtherCount", 0))
        row.installed_pending_reboot = int(state.get("InstalledPendingRebootCount", 0))
        row.installed_rejected = int(state.get("InstalledRejectedCount", 0))
        row.missing = int(state.get("MissingCount", 0))
        row.failed = int(state.get("FailedCount", 0))
        row.not_applicable = int(state.get("NotApplicableCount", 0))
        row.baseline_id = state.get("BaselineId") or None
        row.operation = state.get("Operation") or "Scan"
        row.operation_start = state.get("OperationStartTime")
        row.operation_end = state.get("OperationEndTime")
    return row


def _patch(instance_id: str, patch: dict[str, Any]) -> PatchRecord:
    state = str(patch.get("State", ""))
    return PatchRecord(
        managed_instance_id=instance_id,
        title=str(patch.get("Title", "")),
        kb_id=str(patch.get("KBId", "")),
        state=STATES.get(state.upper(), OTHER_STATE if state.upper() == "AVAILABLE_SECURITY_UPDATE" else state),
        classification=patch.get("Classification") or None,
        severity=patch.get("Severity") or None,
        cve_ids=[c.strip() for c in str(patch.get("CVEIds", "")).split(",") if c.strip()],
        installed_time=patch.get("InstalledTime"),
    )


def _baseline(baseline: dict[str, Any]) -> BaselineRecord:
    return BaselineRecord(
        baseline_id=baseline["BaselineId"],
        name=baseline.get("Name", ""),
        operating_system=baseline.get("OperatingSystem"),
        approval_rule=describe_rules(baseline.get("ApprovalRules") or {}),
        patch_group=", ".join(baseline.get("PatchGroups") or []) or None,
    )


def describe_rules(rules: dict[str, Any]) -> str | None:
    """Approval rules in words: ``approve after 7 days: CLASSIFICATION Security, Bugfix; ...``."""
    described = []
    for rule in rules.get("PatchRules") or []:
        filters = "; ".join(
            f"{f.get('Key')} {', '.join(f.get('Values') or [])}"
            for f in (rule.get("PatchFilterGroup") or {}).get("PatchFilters") or []
        )
        if "ApproveAfterDays" in rule:
            when = f"approve after {rule['ApproveAfterDays']} days"
        elif rule.get("ApproveUntilDate"):
            when = f"approve until {rule['ApproveUntilDate']}"
        else:
            when = "approve on release"
        described.append(f"{when}: {filters}" if filters else when)
    return " | ".join(described) or None
