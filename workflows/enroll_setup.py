"""EnrollVm's account steps: the customer cloud account's systems account and its SSM
configuration (shared children, started once per account and per version), and on the short path
(``FEWER_EVENTS``) their completed results read in one local activity instead."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from temporalio import workflow
from temporalio.common import SearchAttributePair
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import ids
    from contracts import search_attributes as sa
    from contracts.enrollment import (
        SSM_CONFIGURATION_VERSION,
        AccountRef,
        EnrollmentState,
        SsmConfigurationInput,
        SsmConfigurationResult,
        SystemsAccount,
        SystemsAccountInput,
        TenantLink,
    )
    from contracts.models import VmMetadata
    from contracts.providers import PatchGroup, Provider
    from workflows.enroll_steps import EnrollSteps
    from workflows.shared import upsert
    from workflows.ssm_configuration import SsmConfigurationWorkflow
    from workflows.systems_account import SystemsAccountWorkflow

#: How a step sets the run's state, with other search attributes due at the same time.
SetState = Callable[..., None]


async def shared(
    steps: EnrollSteps, link: TenantLink, cloud_account: str, staged: list[SearchAttributePair], set_state: SetState
) -> tuple[SystemsAccount, SsmConfigurationResult]:
    """The systems account and its SSM configuration: read where their shared children completed,
    else those children started or awaited (exactly once per account and version, as before)."""
    known = await steps.known_setup(cloud_account)
    account = known.account
    if account is None:
        set_state(EnrollmentState.VENDING, *staged)
        staged = []
        account = await systems_account_child(steps, link, cloud_account)
    set_state(EnrollmentState.CONFIGURING, *staged, sa.SYSTEMS_ACCOUNT.value_set(account.account_id))
    config = known.configuration or await configuration_child(steps, account)
    return account, config


async def systems_account_child(steps: EnrollSteps, link: TenantLink, cloud_account: str) -> SystemsAccount:
    """The customer cloud account's systems account: a child shared by concurrent enrollments."""
    inp = steps.inp
    aws = inp.provider is Provider.AWS
    return await steps.calls.shared_child(
        SystemsAccountWorkflow.run,
        SystemsAccountInput(
            provider=inp.provider,
            cloud_account=cloud_account,
            customer=link.customer,
            time_zone=link.time_zone,
            role_arn=link.role_arn if aws else None,
            external_id=link.external_id if aws else None,
            windows=link.windows,
            queue_prefix=inp.queue_prefix,
        ),
        id=ids.systems_account(inp.provider, cloud_account),
        result_type=SystemsAccount,
    )


async def configuration_child(steps: EnrollSteps, account: SystemsAccount) -> SsmConfigurationResult:
    """The account's SSM configuration, applied once per version (a shared child)."""
    return await steps.calls.shared_child(
        SsmConfigurationWorkflow.run,
        SsmConfigurationInput(
            account=account_ref(account), version=SSM_CONFIGURATION_VERSION, queue_prefix=steps.inp.queue_prefix
        ),
        id=ids.ssm_configuration(account.account_id, SSM_CONFIGURATION_VERSION),
        result_type=SsmConfigurationResult,
    )


def account_ref(account: SystemsAccount) -> AccountRef:
    return AccountRef(
        account_id=account.account_id, role_arn=account.role_arn, external_id=account.external_id, region=account.region
    )


def patch_group(
    steps: EnrollSteps, metadata: VmMetadata, link: TenantLink, staged: list[SearchAttributePair] | None
) -> PatchGroup:
    """The VM's ring from its labels; on the short path staged with the rest (what is staged is
    set before a refusal ends the run, so the run still shows where the VM is)."""
    try:
        group = steps.patch_group(metadata, link)
    except ApplicationError:
        if staged:
            upsert(*staged)
        raise
    if staged is not None:
        staged.append(sa.PATCH_GROUP.value_set(group.value))
    return group


def discard(pending: asyncio.Future | None) -> None:
    """A side call the run no longer needs: cancelled, or its outcome collected."""
    if pending is None:
        return
    if pending.done():
        if not pending.cancelled():
            pending.exception()
    else:
        pending.cancel()
