"""A customer's systems accounts found from its links (Parameter Store, Organizations) and the
customer train copied from one account's bucket into another's, on the real local AWS."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import yaml
from temporalio.testing import ActivityEnvironment

from activities.patching import PatchingActivities
from clouds.aws.links import LinkStore
from clouds.aws.organizations import Organizations, account_email
from clouds.aws.patch_train import PatchTrainStore
from clouds.aws.sessions import AwsSessions
from clouds.aws.systems_role import SystemsRole
from config.settings import AwsSettings, PatchingSettings
from contracts.enrollment import AccountRef, TenantLink
from contracts.patching import (
    CustomerRingQuery,
    CustomerTrainInput,
    PatchRef,
    RingRunRecord,
    WindowOutcome,
    WindowSummary,
)
from contracts.providers import PatchGroup, Provider

RHEL = [PatchRef("kernel.x86_64", "kernel.x86_64:0:4.18.0-513.9.1.el8_9"), PatchRef("sudo.x86_64", "sudo.x86_64:0:1.9.5p2-1")]
WINDOWS = [PatchRef("KB5040437", "2024-07 Cumulative Update for Windows Server 2022 (KB5040437)")]


def _vend(org: Organizations, settings: AwsSettings, provider: Provider, cloud_account: str,
          sessions: AwsSessions) -> str:
    """A systems account vended the way the aws worker does: Organizations, then its systems role."""
    email = account_email(provider, cloud_account, prefix=settings.account_name_prefix, domain=settings.account_email_domain)
    request = org.submit(f"acme {cloud_account}", email, {"fleetpatch:provider": provider.value,
                                                          "fleetpatch:cloud-account": cloud_account})
    for _ in range(100):
        status = org.status(request)
        if status.state == "SUCCEEDED" and status.account_id:
            SystemsRole(sessions, settings.systems_role_name).ensure(status.account_id)
            return status.account_id
        time.sleep(0.2)
    raise AssertionError("the local Organizations never created the account")


def test_customer_rings_span_every_linked_account_and_the_train_is_copied(local_aws, sessions) -> None:
    tag = secrets.token_hex(4)
    settings = AwsSettings(endpoint_url=local_aws.endpoint, links_parameter_prefix=f"/fleetpatch-{tag}/links",
                           account_name_prefix=f"fp{tag}")
    customer = f"acme-{tag}"
    links, org = LinkStore(sessions, settings.links_parameter_prefix), Organizations(sessions)
    gcp_id = _vend(org, settings, Provider.GCP, f"acme-prod-{tag}", sessions)
    azure_id = _vend(org, settings, Provider.AZURE, f"00000000-0000-0000-0000-{tag}0000", sessions)
    links.put(TenantLink(Provider.GCP, f"acme-prod-{tag}", customer))
    links.put(TenantLink(Provider.AZURE, f"00000000-0000-0000-0000-{tag}0000", customer))
    links.put(TenantLink(Provider.GCP, f"other-{tag}", f"globex-{tag}"))  # another customer's
    gcp, azure = (AccountRef(a, sessions.role_arn_for(a)) for a in (gcp_id, azure_id))

    store = PatchTrainStore(sessions, PatchingSettings().bucket)
    train = store.record_train(gcp, train_id=f"run-{tag}", recorded_by="patch-window/g/early-1",
                               installed={"rhel": RHEL, "windows": WINDOWS}, failed={"rhel": RHEL[1:]},
                               covered_os=["rhel", "windows", "ubuntu"])
    now = datetime.now(UTC)
    record = RingRunRecord(PatchGroup.EARLY, "patch-window/g/early-1", "r", now, now, WindowOutcome.SUCCEEDED, 3, 3, 1.0, train)
    store.record_ring_run(gcp, record, WindowSummary(gcp_id, PatchGroup.EARLY, WindowOutcome.SUCCEEDED, now, now))

    acts = PatchingActivities(settings, PatchingSettings(), sessions=sessions)
    env = ActivityEnvironment()
    rings = env.run(acts.read_customer_rings, CustomerRingQuery(customer, PatchGroup.EARLY, azure))
    assert [r.account.account_id for r in rings.accounts] == sorted([gcp_id, azure_id])
    by_id = {r.account.account_id: r for r in rings.accounts}
    assert by_id[gcp_id].label == f"gcp/acme-prod-{tag} ({gcp_id})" and by_id[gcp_id].record == record
    assert by_id[azure_id].record is None
    alone = env.run(acts.read_customer_rings, CustomerRingQuery(customer, PatchGroup.EARLY, azure, scope="account"))
    assert [r.account.account_id for r in alone.accounts] == [azure_id]

    copy = env.run(acts.copy_customer_train, CustomerTrainInput(azure, train.train_id, "patch-window/a/on-time-1",
                                                                 [by_id[gcp_id]]))
    assert copy.train_id == train.train_id and {os: e.count for os, e in copy.per_os.items()} == {
        "rhel": 1, "windows": 1, "ubuntu": 0}
    azure_bucket = f"s3://fleetpatch-patching-{azure_id}-us-east-1/"
    assert all(e.url is None or e.url.startswith(azure_bucket) for e in copy.per_os.values())
    listed = yaml.safe_load(store.read_object(azure, copy.per_os["rhel"].url))["patches"]
    assert listed == [{"id": "kernel.x86_64", "title": "kernel.x86_64:0:4.18.0-513.9.1.el8_9"}]
    again = env.run(acts.copy_customer_train, CustomerTrainInput(azure, train.train_id, "x", [by_id[gcp_id]]))
    assert again == copy  # written once
