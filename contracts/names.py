"""Temporal names that cross process boundaries: workflow types, signals, queries and updates.

Workflows declare themselves with these names and every client (API, CLI, schedules) uses the
same constants, so a rename is one edit and a typo is an import error. The values are the names
running histories hold: never change a value, only add.
"""

from __future__ import annotations


class WorkflowName:
    ENROLL_VM = "EnrollVm"
    SYSTEMS_ACCOUNT = "SystemsAccount"
    SSM_CONFIGURATION = "SsmConfiguration"
    LINK_ADMIN = "LinkAdmin"
    ALLOW_REENROLLMENT = "AllowReenrollment"
    DOCTOR = "Doctor"
    PATCH_WINDOW = "PatchWindow"
    PATCH_BATCH = "PatchBatch"
    RECONCILE = "Reconcile"
    VCENTER_TOKENS = "VcenterTokens"
    COMPLIANCE_SYNC = "ComplianceSync"


class UpdateName:
    REGISTER = "register"  # EnrollVm: a VM's registration, answered with its activation


class QueryName:
    STATUS = "status"  # EnrollVm, PatchWindow and ComplianceSync: the run's current status


class SignalName:
    RELEASE = "release"  # PatchWindow: an operator releases a held ring
    BATCH_ERRORS = "batch_errors"  # PatchBatch -> PatchWindow: errors so far, for max-errors
    STOP = "stop"  # PatchWindow -> PatchBatch: cutoff reached, stop dispatching
