"""Deterministic workflow ids. Starting a workflow twice with one id is how starts stay idempotent."""

from __future__ import annotations

from contracts.providers import PatchGroup, Provider


def enrollment(provider: Provider | str, instance_key: str) -> str:
    return f"enroll/{Provider(provider).value}/{instance_key}"


def systems_account(provider: Provider | str, cloud_account: str) -> str:
    return f"systems-account/{Provider(provider).value}/{cloud_account}"


def ssm_configuration(systems_account_id: str, version: int) -> str:
    """One run per account and configuration version: a new version re-applies, once."""
    return f"ssm-config/{systems_account_id}/v{version}"


def patch_window_schedule(systems_account_id: str, group: PatchGroup | str) -> str:
    return f"patch-window/{systems_account_id}/{PatchGroup(group).value}"


def doctor(run_id: str) -> str:
    return f"doctor/{run_id}"


def reconcile_schedule(provider: Provider | str, cloud_account: str) -> str:
    """The hourly reconcile of one linked cloud account (its scheduled runs carry this prefix)."""
    return f"reconcile/{Provider(provider).value}/{cloud_account}"


def reconcile_run(provider: Provider | str, cloud_account: str, run: str) -> str:
    """An on-demand reconcile run (``run`` from the caller: a timestamp or a uuid)."""
    return f"{reconcile_schedule(provider, cloud_account)}/{run}"


def vcenter_tokens_schedule(vcenter_id: str) -> str:
    """The token schedule of one vmware link, ``vc01`` or ``vc01:acme`` (its scheduled runs carry
    this prefix)."""
    return f"vcenter-tokens/{vcenter_id}"


def vcenter_tokens_run(vcenter_id: str, run: str) -> str:
    """An on-demand token run of one vmware link (``fleetpatch vcenter issue-tokens``)."""
    return f"{vcenter_tokens_schedule(vcenter_id)}/{run}"
