"""Every workflow the orchestrator worker runs."""

from __future__ import annotations

from workflows.compliance import ComplianceSyncWorkflow
from workflows.doctor import DoctorWorkflow
from workflows.enroll import EnrollVmWorkflow
from workflows.links import LinkAdminWorkflow
from workflows.patch_batch import PatchBatchWorkflow
from workflows.patch_window import PatchWindowWorkflow
from workflows.reconcile import ReconcileWorkflow
from workflows.reenroll import AllowReenrollmentWorkflow
from workflows.vcenter_tokens import VcenterTokensWorkflow
from workflows.ssm_configuration import SsmConfigurationWorkflow
from workflows.systems_account import SystemsAccountWorkflow

ALL_WORKFLOWS: tuple[type, ...] = (
    DoctorWorkflow,
    EnrollVmWorkflow,
    LinkAdminWorkflow,
    AllowReenrollmentWorkflow,
    SystemsAccountWorkflow,
    SsmConfigurationWorkflow,
    PatchWindowWorkflow,
    PatchBatchWorkflow,
    ReconcileWorkflow,
    VcenterTokensWorkflow,
    ComplianceSyncWorkflow,
)
