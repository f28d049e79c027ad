"""EnrollVm records how the VM proved itself (its last step, on the aws worker): the key that
signed, a digest of the identity and never the identity, when it was verified, and the run."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from contracts import ids, taskqueues
from contracts.enrollment import EnrollInput, EnrollmentPolicy, EnrollResult, RegistrationAnswer
from contracts.errors import ErrorType
from contracts.evidence import EnrollmentEvidence, RecordEvidenceResult, identity_digest
from contracts.models import ActivityName
from contracts.names import UpdateName, WorkflowName
from contracts.providers import OsFamily, Provider, WorkerRole
from tests.unit.enrollment.fakes import FakeClouds, Vm
from tests.unit.enrollment.test_enroll_workflow import workers

#: A credential-looking identity: it must appear in no payload of the evidence step.
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LWNsYWltcw.c2lnbmF0dXJlLW9mLXRoZS12bQ"


def _input(vm: Vm, prefix: str) -> EnrollInput:
    return EnrollInput(
        provider=vm.provider, instance_key=f"{vm.cloud_account}/{vm.instance_id}", identity={"token": TOKEN},
        hostname=f"host-{vm.instance_id}", os=OsFamily.UBUNTU, os_version="22.04",
        secret_digest=hashlib.sha256(b"s").hexdigest(), policy=EnrollmentPolicy(), queue_prefix=prefix,
    )


async def _enroll(client: Client, inp: EnrollInput) -> tuple[WorkflowHandle, EnrollResult]:
    handle = await client.start_workflow(
        WorkflowName.ENROLL_VM, inp, id=ids.enrollment(inp.provider, inp.instance_key) + uuid.uuid4().hex[:6],
        task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, inp.queue_prefix), result_type=EnrollResult,
    )
    _, result = await asyncio.gather(
        handle.execute_update(UpdateName.REGISTER, result_type=RegistrationAnswer), handle.result()
    )
    return handle, result


async def _evidence_payloads(handle: WorkflowHandle) -> list[bytes]:
    history = await handle.fetch_history()
    return [
        b"".join(p.data for p in e.activity_task_scheduled_event_attributes.input.payloads)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == ActivityName.RECORD_ENROLLMENT_EVIDENCE
    ]


async def test_gcp_enrollment_records_its_evidence_without_the_identity(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    project = "proj-" + queue_prefix.strip("-")
    fake = FakeClouds()
    vm = Vm(provider=Provider.GCP, cloud_account=project, instance_id="1001",
            labels={"rackspace-addon-patching": "true", "rackspace-addon-patching-patchgroup": "early"},
            evidence={"kid": "0e72da1df501ca6f756bf103fd7c720294772506", "alg": "RS256",
                      "token_sha256": "11" * 32})
    fake.vms[TOKEN] = vm
    fake.link(Provider.GCP, project, customer="acme")
    async with workers(time_skipping_env.client, queue_prefix, fake):
        handle, result = await _enroll(time_skipping_env.client, _input(vm, queue_prefix))
        payloads = await _evidence_payloads(handle)
    [proof] = fake.evidence
    assert isinstance(proof, EnrollmentEvidence)
    assert (proof.workflow_id, proof.run_id) == (handle.id, handle.result_run_id)
    assert (proof.provider, proof.instance_key, proof.cloud_account) == ("gcp", f"{project}/1001", project)
    assert (proof.key_kind, proof.key_id) == ("kid", "0e72da1df501ca6f756bf103fd7c720294772506")
    assert proof.identity_sha256 == identity_digest({"token": TOKEN})
    assert proof.verified_at.tzinfo is not None
    assert (proof.customer, proof.systems_account, proof.patch_group) == ("acme", result.systems_account, "early")
    assert proof.managed_instance_id == result.managed_instance_id and proof.managed_instance_id.startswith("mi-")
    # What crossed Temporal for this step: the digest, never the identity or any part of it.
    assert len(payloads) == 1 and proof.identity_sha256.encode() in payloads[0]
    assert all(part.encode() not in payloads[0] for part in (TOKEN, *TOKEN.split(".")))


async def test_ec2_enrollment_names_the_signer_certificate(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    fake = FakeClouds()
    vm = Vm(provider=Provider.AWS, cloud_account="111122223333", instance_id="i-0abc",
            evidence={"form": "rsa2048", "signer_cert_sha256": "ab" * 32, "content_sha256": "cd" * 32})
    fake.vms[TOKEN] = vm
    fake.link(Provider.AWS, "111122223333", role_arn="arn:aws:iam::111122223333:role/fleetpatch")
    async with workers(time_skipping_env.client, queue_prefix, fake):
        await _enroll(time_skipping_env.client, _input(vm, queue_prefix))
    [proof] = fake.evidence
    assert (proof.key_kind, proof.key_id) == ("signer_certificate_sha256", "ab" * 32)
    assert (proof.provider, proof.managed_instance_id, proof.systems_account) == ("aws", "i-0abc", "111122223333")


async def test_a_refused_enrollment_records_nothing(time_skipping_env: WorkflowEnvironment, queue_prefix: str) -> None:
    project = "proj-" + queue_prefix.strip("-")
    fake = FakeClouds()
    vm = Vm(provider=Provider.GCP, cloud_account=project, instance_id="1001", labels={"rackspace-addon-patching": "no"})
    fake.vms[TOKEN] = vm
    fake.link(Provider.GCP, project)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        handle = await time_skipping_env.client.start_workflow(
            WorkflowName.ENROLL_VM, _input(vm, queue_prefix), id=f"enroll/refused/{uuid.uuid4().hex}",
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix), result_type=EnrollResult,
        )
        result = await handle.result()
    assert result.refused == ErrorType.PATCHING_NOT_ENABLED.value
    assert fake.evidence == [] and fake.calls["record_evidence"] == 0


class BrokenStore(FakeClouds):
    """The estate store cannot be written: every attempt fails."""

    @activity.defn(name=ActivityName.RECORD_ENROLLMENT_EVIDENCE)
    async def record_enrollment_evidence(self, inp: EnrollmentEvidence) -> RecordEvidenceResult:
        self.calls["record_evidence"] += 1
        raise RuntimeError("database is locked")


async def test_an_unwritable_store_does_not_fail_the_enrollment(
    time_skipping_env: WorkflowEnvironment, queue_prefix: str
) -> None:
    project = "proj-" + queue_prefix.strip("-")
    fake = BrokenStore()
    vm = Vm(provider=Provider.GCP, cloud_account=project, instance_id="1001")
    fake.vms[TOKEN] = vm
    fake.link(Provider.GCP, project)
    async with workers(time_skipping_env.client, queue_prefix, fake):
        started = await time_skipping_env.get_current_time()
        _, result = await _enroll(time_skipping_env.client, _input(vm, queue_prefix))
        waited = await time_skipping_env.get_current_time() - started
    assert result.managed_instance_id and result.refused is None
    assert fake.calls["record_evidence"] > 1  # retried (ESTATE_WRITE), then given up
    assert waited >= timedelta(minutes=5)
