"""The patch train and the ring records, in an S3 bucket of the systems account.

Layout (bucket name from settings, e.g. ``fleetpatch-patching-{account_id}-{region}``):

- ``patch-train/{train id}/{os}.yaml``  the InstallOverrideList of one OS, in the YAML format AWS
  documents for AWS-RunPatchBaseline: ``patches:`` then one ``id`` (Windows: the KB id; Linux:
  ``name.arch``) and ``title`` (Linux: ``name.arch:version`` or ``name.arch:epoch:version-release``,
  exactly what the early instances reported, so a later ring installs that version and no newer
  one) per patch. The run passes it as an S3 path-style URL (``s3://bucket/key``), the form AWS
  requires for a private bucket. Train files are never overwritten: a new early run writes a new
  train id, so a later ring running now keeps reading the list it started with.
- ``patch-train/{train id}/manifest.json``  the train (``PatchTrain``).
- ``rings/{group}/last-run.json``  the ring's last run (``RingRunRecord``): the next ring's gate.
- ``reports/{window workflow id}/batch-NNNN.json`` and ``summary.json``  every instance's result.

The bucket blocks public access; its policy lets the managed instances' service role read
``patch-train/`` only (the role exists once the account's SSM configuration is applied).

What goes into a train: patches reported INSTALLED or INSTALLED_PENDING_REBOOT with an install
time inside the early run, minus any patch (same id and title) that FAILED on an early instance
of the same OS. An OS the early ring covered but installed nothing on gets an empty entry; later
rings then install nothing on it (they scan), see ``workflows.patch_plan.os_plan``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import yaml
from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from clouds.aws.errors import aws_call, error_code
from clouds.aws.sessions import AwsSessions
from clouds.aws.ssm_config import SERVICE_ROLE
from contracts.enrollment import AccountRef
from contracts.patching import InstanceResult, PatchRef, PatchTrain, RingRunRecord, TrainOs, WindowSummary
from contracts.providers import PatchGroup

_RECORD = TypeAdapter(RingRunRecord)
_TRAIN = TypeAdapter(PatchTrain)
_SUMMARY = TypeAdapter(WindowSummary)
_ROWS = TypeAdapter(list[InstanceResult])
_PATCHES = TypeAdapter(dict[str, list[PatchRef]])


def render_override_list(patches: list[PatchRef]) -> str:
    """An InstallOverrideList document. Every scalar is double-quoted with YAML escapes, so any
    package name, version or KB title stays exactly one literal value (no YAML typing, no
    comments, no line breaks)."""
    if not patches:
        return "patches: []\n"
    lines = ["patches:"]
    for patch in patches:
        lines.append(f"  - id: {yaml_quote(patch.id)}")
        if patch.title:
            lines.append(f"    title: {yaml_quote(patch.title)}")
    return "\n".join(lines) + "\n"


def yaml_quote(value: str) -> str:
    """A YAML double-quoted scalar: printable ASCII as is, everything else escaped."""
    out = ['"']
    for char in value:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif 0x20 <= code <= 0x7E:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def train_entries(installed: list[PatchRef], failed: list[PatchRef]) -> list[PatchRef]:
    """Installed minus failed, one entry per (id, title), sorted."""
    refused = {(p.id, p.title) for p in failed}
    unique = {(p.id, p.title): p for p in installed if (p.id, p.title) not in refused}
    return [unique[key] for key in sorted(unique)]


def parse_override_list(text: str | bytes) -> list[PatchRef]:
    """The patches of an InstallOverrideList this store wrote."""
    doc = yaml.safe_load(text) or {}
    return [PatchRef(str(e["id"]), str(e.get("title", ""))) for e in doc.get("patches") or []]


def merge_trains(
    installed: list[dict[str, list[PatchRef]]], failed: list[dict[str, list[PatchRef]]],
) -> dict[str, list[PatchRef]]:
    """One customer train from the trains of several accounts: per OS, every patch some
    account's early run installed, minus any patch (same id and title) that failed on an early
    instance of that OS in any account. Every OS of any source keeps an entry (maybe empty)."""
    refused: dict[str, list[PatchRef]] = {}
    for source in failed:
        for os, patches in source.items():
            refused.setdefault(os, []).extend(patches)
    merged: dict[str, list[PatchRef]] = {}
    for source in installed:
        for os, patches in source.items():
            merged.setdefault(os, []).extend(patches)
    return {os: train_entries(patches, refused.get(os, [])) for os, patches in sorted(merged.items())}


def train_read_policy(bucket: str, account_id: str) -> dict[str, Any]:
    """The hybrid instances' service role may read the train (its InstallOverrideLists): a fixed
    role principal, so the policy is not public and Block Public Access keeps it. EC2 instances
    read it with their own instance profile, which needs ``s3:GetObject`` on ``patch-train/*``."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ManagedInstancesReadThePatchTrain",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:role/{SERVICE_ROLE}"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/patch-train/*",
        }],
    }


class PatchTrainStore:
    def __init__(self, sessions: AwsSessions, bucket_template: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._sessions = sessions
        self._template = bucket_template
        self._clock = clock
        self._ensured: set[str] = set()

    def bucket(self, account: AccountRef) -> str:
        return self._template.format(account_id=account.account_id, region=account.region)

    def _s3(self, account: AccountRef) -> Any:
        return self._sessions.in_account("s3", account.role_arn, account.external_id, account.region)

    def ensure_bucket(self, account: AccountRef) -> str:
        """Check, create, adopt: the bucket exists, private, in the account's region."""
        s3, bucket = self._s3(account), self.bucket(account)
        if bucket in self._ensured:
            return bucket
        try:
            with aws_call("s3:HeadBucket"):
                s3.head_bucket(Bucket=bucket)
            self._ensured.add(bucket)
            return bucket
        except ClientError as err:
            if error_code(err) not in ("404", "NoSuchBucket", "NotFound"):
                raise
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if account.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": account.region}
        try:
            with aws_call("s3:CreateBucket"):
                s3.create_bucket(**kwargs)
        except ClientError as err:
            if error_code(err) != "BucketAlreadyOwnedByYou":
                raise
        with aws_call("s3:PutPublicAccessBlock"):
            s3.put_public_access_block(
                Bucket=bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True, "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
                },
            )
        with aws_call("s3:PutBucketPolicy"):
            s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(train_read_policy(bucket, account.account_id)))
        self._ensured.add(bucket)
        return bucket

    def _put(self, account: AccountRef, key: str, body: str, content_type: str) -> str:
        bucket = self.ensure_bucket(account)
        with aws_call("s3:PutObject"):
            self._s3(account).put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType=content_type)
        return f"s3://{bucket}/{key}"

    def _get(self, account: AccountRef, key: str) -> bytes | None:
        try:
            with aws_call("s3:GetObject"):
                return self._s3(account).get_object(Bucket=self.bucket(account), Key=key)["Body"].read()
        except ClientError as err:
            if error_code(err) in ("NoSuchKey", "NoSuchBucket", "404"):
                return None
            raise

    # --- the train ---------------------------------------------------------------------------

    def record_train(
        self, account: AccountRef, *, train_id: str, recorded_by: str,
        installed: dict[str, list[PatchRef]], failed: dict[str, list[PatchRef]], covered_os: list[str],
    ) -> PatchTrain:
        """Write one InstallOverrideList per OS, then the manifest (written last: a train is
        complete once its manifest exists)."""
        train = PatchTrain(train_id=train_id, recorded_by=recorded_by, recorded_at=self._clock())
        for os in sorted(set(covered_os) | set(installed)):
            entries = train_entries(installed.get(os, []), failed.get(os, []))
            url = None
            if entries:
                url = self._put(account, f"patch-train/{train_id}/{os}.yaml", render_override_list(entries), "application/yaml")
            train.per_os[os] = TrainOs(os=os, count=len(entries), url=url)
        refused = {os: patches for os, patches in sorted(failed.items()) if patches}
        if refused:  # what a customer train built from this one must leave out
            self._put(account, f"patch-train/{train_id}/failed.json", _PATCHES.dump_json(refused).decode(), "application/json")
        self._put(account, f"patch-train/{train_id}/manifest.json", _TRAIN.dump_json(train).decode(), "application/json")
        return train

    def copy_customer_train(
        self, account: AccountRef, *, train_id: str, recorded_by: str, sources: list[tuple[AccountRef, PatchTrain]],
    ) -> PatchTrain:
        """The customer train in ``account``'s bucket, built from the trains of ``sources`` (each
        read from its own account's bucket). Idempotent: a train already written is returned."""
        existing = self.read_train(account, train_id)
        if existing is not None:
            return existing
        installed: list[dict[str, list[PatchRef]]] = []
        failed: list[dict[str, list[PatchRef]]] = []
        covered: set[str] = set()
        for source, train in sources:
            covered |= set(train.per_os)
            installed.append({os: parse_override_list(self.read_object(source, entry.url) or b"")
                              for os, entry in train.per_os.items() if entry.url})
            raw = self._get(source, f"patch-train/{train.train_id}/failed.json")
            failed.append(_PATCHES.validate_json(raw) if raw else {})
        merged = merge_trains(installed, failed)
        return self.record_train(account, train_id=train_id, recorded_by=recorded_by, installed=merged, failed={},
                                 covered_os=sorted(covered))

    def read_train(self, account: AccountRef, train_id: str) -> PatchTrain | None:
        raw = self._get(account, f"patch-train/{train_id}/manifest.json")
        return _TRAIN.validate_json(raw) if raw is not None else None

    def read_object(self, account: AccountRef, url: str) -> bytes | None:
        """The body behind an ``s3://bucket/key`` URL of this account's patching bucket."""
        prefix = f"s3://{self.bucket(account)}/"
        if not url.startswith(prefix):
            raise ValueError(f"{url} is not in {prefix}")
        return self._get(account, url[len(prefix):])

    # --- ring records ------------------------------------------------------------------------

    def ring_record(self, account: AccountRef, group: PatchGroup | str) -> RingRunRecord | None:
        raw = self._get(account, f"rings/{PatchGroup(group).value}/last-run.json")
        return _RECORD.validate_json(raw) if raw is not None else None

    def record_ring_run(self, account: AccountRef, record: RingRunRecord, summary: WindowSummary) -> None:
        """The summary under the run's reports; the record as the ring's last run unless a run
        that started later has recorded itself already."""
        self._put(account, f"reports/{record.workflow_id}/summary.json", _SUMMARY.dump_json(summary).decode(), "application/json")
        current = self.ring_record(account, record.group)
        if current is not None and current.started > record.started and current.workflow_id != record.workflow_id:
            return
        self._put(account, f"rings/{PatchGroup(record.group).value}/last-run.json", _RECORD.dump_json(record).decode(),
                  "application/json")

    def write_report(self, account: AccountRef, window_id: str, batch: int, rows: list[InstanceResult]) -> str:
        body = json.dumps({"window": window_id, "batch": batch, "instances": [asdict(r) for r in rows]}, default=str)
        return self._put(account, f"reports/{window_id}/batch-{batch:04d}.json", body, "application/json")

    def read_report_rows(self, account: AccountRef, url: str) -> list[InstanceResult]:
        raw = self.read_object(account, url)
        return _ROWS.validate_python(json.loads(raw)["instances"]) if raw else []
