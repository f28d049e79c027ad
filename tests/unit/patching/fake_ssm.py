"""A scripted SSM fleet behind the real patch-window activity names (time-skipping tests).

Commands follow Run Command's rules (MaxConcurrency, MaxErrors with "Terminated", cancel of
invocations that have not started); one poll advances every open command by one step. Installs
follow the patch train: with an InstallOverrideList the fake reads the YAML the real
``render_override_list`` wrote and installs the catalogue patches its entries select (Linux:
``id`` and ``title`` matched as globs, Windows: the KB id), without one it installs everything
missing (the fake baselines approve everything).
"""

from __future__ import annotations

import fnmatch
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from temporalio import activity

from clouds.aws.patch_train import merge_trains, parse_override_list, render_override_list, train_entries
from clouds.aws.ssm_commands import Invocation, classify
from contracts.compliance import RecordWindowInput, RecordWindowResult
from contracts.models import ActivityName
from contracts.patch_batches import (
    BatchResult,
    CancelPendingInput,
    CancelPendingResult,
    CollectBatchInput,
    CommandProgress,
    CommandSpec,
    PollCommandsInput,
    PollCommandsResult,
    SendCommandInput,
    SentCommand,
)
from contracts.enrollment import AccountRef
from contracts.patching import (
    CustomerRingQuery,
    CustomerRings,
    CustomerTrainInput,
    InstanceResult,
    InstanceStatus,
    Operation,
    PatchRef,
    PatchTargets,
    PatchTrain,
    RecordRingRunInput,
    RecordTrainInput,
    RingAccount,
    RingRecordQuery,
    RingRecordResult,
    RingRunRecord,
    TargetQuery,
    TrainOs,
    WindowSummary,
)
from contracts.providers import PatchGroup


@dataclass
class Instance:
    id: str
    os: str
    group: PatchGroup
    fails: bool = False  # its install fails (and reports the first missing patch FAILED)
    account: str = ""  # its systems account ("": every account sees it)
    installed: dict[tuple[str, str], datetime] = field(default_factory=dict)
    failed: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class Command:
    spec: CommandSpec
    sent_at: datetime
    status: dict[str, str] = field(default_factory=dict)  # instance -> Pending|InProgress|Success|Failed|Cancelled
    details: dict[str, str] = field(default_factory=dict)
    steps: Counter = field(default_factory=Counter)  # instance -> polls while in progress
    cancelled: bool = False

    def errors(self) -> int:
        return sum(1 for s in self.status.values() if s == "Failed")

    def open(self) -> bool:
        return any(s in ("Pending", "InProgress") for s in self.status.values())


@dataclass
class FakeSsm:
    instances: dict[str, Instance] = field(default_factory=dict)
    catalogue: dict[str, list[PatchRef]] = field(default_factory=dict)  # os -> available patches
    run_polls: int = 2  # polls an invocation stays InProgress
    s3: dict[str, str] = field(default_factory=dict)
    records: dict[str, RingRunRecord] = field(default_factory=dict)
    summaries: dict[str, WindowSummary] = field(default_factory=dict)
    commands: dict[str, Command] = field(default_factory=dict)
    sends: list[tuple[datetime, CommandSpec]] = field(default_factory=list)
    cancels: list[datetime] = field(default_factory=list)
    max_in_progress: int = 0
    #: customer -> (systems account, label): what ``read_customer_rings`` finds beyond the asker.
    customers: dict[str, list[tuple[AccountRef, str]]] = field(default_factory=dict)
    ring_log: list[tuple[str, PatchGroup, Any]] = field(default_factory=list)  # every record written
    failed_lists: dict[str, dict[str, list[PatchRef]]] = field(default_factory=dict)  # train id -> failed
    estate: list[RecordWindowInput] = field(default_factory=list)  # what windows gave the estate store
    _ids: itertools.count = field(default_factory=itertools.count)

    def add(self, os: str, group: PatchGroup, count: int, *, fails: int = 0, prefix: str = "mi", account: str = "") -> list[str]:
        ids = []
        for n in range(count):
            instance_id = f"{prefix}-{os[:3]}{group.value[:2]}{len(self.instances):013x}"
            self.instances[instance_id] = Instance(instance_id, os, group, fails=n < fails, account=account)
            ids.append(instance_id)
        return ids

    def installed_set(self, ids: list[str]) -> set[tuple[str, str]]:
        return {key for i in ids for key in self.instances[i].installed}

    # --- targets and commands ---------------------------------------------------------------

    @activity.defn(name=ActivityName.RESOLVE_PATCH_TARGETS)
    async def resolve_patch_targets(self, query: TargetQuery) -> PatchTargets:
        by_os: dict[str, list[str]] = {}
        for instance in self.instances.values():
            if instance.group is query.group and instance.account in ("", query.account.account_id):
                by_os.setdefault(instance.os, []).append(instance.id)
        return PatchTargets(by_os={os: sorted(ids) for os, ids in sorted(by_os.items())})

    @activity.defn(name=ActivityName.SEND_PATCH_COMMAND)
    async def send_patch_command(self, inp: SendCommandInput) -> SentCommand:
        spec = inp.spec
        assert 1 <= len(spec.instance_ids) <= 50, "SendCommand takes at most 50 instance ids"
        command_id = f"cmd-{next(self._ids):06d}"
        command = Command(spec=spec, sent_at=activity.info().scheduled_time)
        for instance in spec.instance_ids:
            command.status[instance] = "Pending"
        self.commands[command_id] = command
        self.sends.append((activity.info().scheduled_time, spec))
        self._dispatch(command)
        return SentCommand(index=spec.index, command_id=command_id)

    def _dispatch(self, command: Command) -> None:
        limit = int(command.spec.max_concurrency)
        if command.errors() > int(command.spec.max_errors):
            for instance, status in command.status.items():
                if status == "Pending":
                    command.status[instance], command.details[instance] = "Cancelled", "Terminated"
            return
        running = sum(1 for s in command.status.values() if s == "InProgress")
        for instance, status in command.status.items():
            if running >= limit:
                break
            if status == "Pending" and not command.cancelled:
                command.status[instance] = "InProgress"
                running += 1
        self.max_in_progress = max(self.max_in_progress, self.in_progress())

    def in_progress(self) -> int:
        return sum(1 for c in self.commands.values() for s in c.status.values() if s == "InProgress")

    @activity.defn(name=ActivityName.POLL_PATCH_COMMANDS)
    async def poll_patch_commands(self, inp: PollCommandsInput) -> PollCommandsResult:
        for command_id in inp.command_ids:
            command = self.commands[command_id]
            for instance, status in list(command.status.items()):
                if status == "InProgress":
                    command.steps[instance] += 1
                    if command.steps[instance] >= self.run_polls:
                        self._finish(command, instance, activity.info().scheduled_time)
            self._dispatch(command)
        return PollCommandsResult(progress=[self._progress(c) for c in inp.command_ids])

    def _progress(self, command_id: str) -> CommandProgress:
        command = self.commands[command_id]
        statuses = list(command.status.values())
        if command.open():
            status = "Cancelling" if command.cancelled else "InProgress"
        elif command.cancelled:
            status = "Cancelled"
        else:
            status = "Success" if all(s == "Success" for s in statuses) else "Failed"
        return CommandProgress(command_id, status, len(statuses),
                               sum(1 for s in statuses if s not in ("Pending", "InProgress")), command.errors())

    def _finish(self, command: Command, instance_id: str, now: datetime) -> None:
        instance = self.instances[instance_id]
        spec = command.spec
        missing = [p for p in self._selected(spec, instance) if (p.id, p.title) not in instance.installed]
        if spec.operation is Operation.INSTALL and instance.fails:
            command.status[instance_id], command.details[instance_id] = "Failed", "Failed"
            if missing:
                instance.failed.add((missing[0].id, missing[0].title))
            return
        if spec.operation is Operation.INSTALL:
            for patch in missing:
                instance.installed[(patch.id, patch.title)] = now
        command.status[instance_id], command.details[instance_id] = "Success", "Success"

    def _selected(self, spec: CommandSpec, instance: Instance) -> list[PatchRef]:
        available = self.catalogue.get(instance.os, [])
        if not spec.install_override_list:
            return list(available)
        entries = yaml.safe_load(self.s3[spec.install_override_list])["patches"]
        if instance.os == "windows":
            wanted = {e["id"].upper() for e in entries}
            return [p for p in available if p.id.upper() in wanted]
        return [p for p in available if any(
            fnmatch.fnmatchcase(p.id, e["id"]) and fnmatch.fnmatchcase(p.title, e.get("title") or "*") for e in entries)]

    @activity.defn(name=ActivityName.CANCEL_PENDING_INVOCATIONS)
    async def cancel_pending_invocations(self, inp: CancelPendingInput) -> CancelPendingResult:
        self.cancels.append(activity.info().scheduled_time)
        cancelled = 0
        for command_id in inp.command_ids:
            command = self.commands[command_id]
            for instance, status in command.status.items():
                if status == "Pending":
                    command.status[instance], command.details[instance] = "Cancelled", "Cancelled"
                    cancelled += 1
        return CancelPendingResult(cancelled=cancelled)

    @activity.defn(name=ActivityName.COLLECT_PATCH_BATCH)
    async def collect_patch_batch(self, inp: CollectBatchInput) -> BatchResult:
        sent = {s.index: s.command_id for s in inp.sent}
        rows: dict[str, InstanceResult] = {}
        result = BatchResult(batch=inp.batch)
        for spec in inp.specs:
            command = self.commands.get(sent.get(spec.index, ""))
            for instance_id in spec.instance_ids:
                if command is None:
                    rows[instance_id] = InstanceResult(instance_id, spec.os, InstanceStatus.NOT_DISPATCHED,
                                                       inp.not_dispatched_reason, operation=spec.operation.value)
                    continue
                status, reason = classify(Invocation(instance_id, command.status[instance_id],
                                                     command.details.get(instance_id, command.status[instance_id])))
                result.errors += status is InstanceStatus.FAILED
                instance = self.instances[instance_id]
                rows[instance_id] = InstanceResult(instance_id, spec.os, status, reason, installed=len(instance.installed),
                                                   failed=len(instance.failed), operation=spec.operation.value)
                if inp.record_patches and status in (InstanceStatus.SUCCEEDED, InstanceStatus.FAILED):
                    got = [PatchRef(k[0], k[1]) for k, when in instance.installed.items() if when >= inp.since]
                    result.installed.setdefault(spec.os, []).extend(got)
                    result.failed_patches.setdefault(spec.os, []).extend(PatchRef(*k) for k in instance.failed)
        result.instances = [rows[i] for i in sorted(rows)]
        return result

    # --- S3: ring records and the train -------------------------------------------------------

    @activity.defn(name=ActivityName.READ_RING_RECORD)
    async def read_ring_record(self, query: RingRecordQuery) -> RingRecordResult:
        return RingRecordResult(record=self.records.get(f"{query.account.account_id}/{query.group.value}"))

    @activity.defn(name=ActivityName.RECORD_RING_RUN)
    async def record_ring_run(self, inp: RecordRingRunInput) -> None:
        self.records[f"{inp.account.account_id}/{inp.record.group.value}"] = inp.record
        self.ring_log.append((inp.account.account_id, inp.record.group, inp.record.outcome))
        self.summaries[inp.record.workflow_id] = inp.summary

    @activity.defn(name=ActivityName.RECORD_PATCH_TRAIN)
    async def record_patch_train(self, inp: RecordTrainInput) -> PatchTrain:
        train = PatchTrain(train_id=inp.train_id, recorded_by=inp.recorded_by, recorded_at=activity.info().scheduled_time)
        for os in sorted(set(inp.covered_os) | set(inp.installed)):
            entries = train_entries(inp.installed.get(os, []), inp.failed.get(os, []))
            url = None
            if entries:
                url = f"s3://fake-bucket-{inp.account.account_id}/patch-train/{inp.train_id}/{os}.yaml"
                self.s3[url] = render_override_list(entries)
            train.per_os[os] = TrainOs(os=os, count=len(entries), url=url)
        self.failed_lists[inp.train_id] = {os: list(p) for os, p in inp.failed.items() if p}
        return train

    @activity.defn(name=ActivityName.READ_CUSTOMER_RINGS)
    async def read_customer_rings(self, query: CustomerRingQuery) -> CustomerRings:
        accounts = {query.account.account_id: (query.account, "")}
        if query.scope == "customer":
            for ref, label in self.customers.get(query.customer, []):
                accounts[ref.account_id] = (accounts.get(ref.account_id, (ref, ""))[0], label)
        return CustomerRings([RingAccount(ref, label, self.records.get(f"{ref.account_id}/{query.group.value}"))
                              for _, (ref, label) in sorted(accounts.items())])

    @activity.defn(name=ActivityName.COPY_CUSTOMER_TRAIN)
    async def copy_customer_train(self, inp: CustomerTrainInput) -> PatchTrain:
        installed, failed = [], []
        for source in inp.sources:
            train = source.record.train
            installed.append({os: parse_override_list(self.s3[e.url]) for os, e in train.per_os.items() if e.url})
            failed.append(self.failed_lists.get(train.train_id, {}))
        merged = merge_trains(installed, failed)
        covered = sorted({os for s in inp.sources for os in s.record.train.per_os})
        return await self.record_patch_train(RecordTrainInput(
            account=inp.account, train_id=inp.train_id, recorded_by=inp.recorded_by, installed=merged, failed={},
            covered_os=covered))

    @activity.defn(name=ActivityName.RECORD_WINDOW_RESULTS)
    async def record_window_results(self, inp: RecordWindowInput) -> RecordWindowResult:
        self.estate.append(inp)
        return RecordWindowResult(recorded=len(inp.instances))

    def activities(self) -> list:
        return [
            self.resolve_patch_targets, self.send_patch_command, self.poll_patch_commands,
            self.cancel_pending_invocations, self.collect_patch_batch, self.read_ring_record,
            self.record_ring_run, self.record_patch_train, self.read_customer_rings, self.copy_customer_train,
            self.record_window_results,
        ]
