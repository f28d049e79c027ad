"""Links, account vending, SSM configuration and activations, through boto3 to the local AWS."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from urllib.parse import unquote

import pytest

from clouds.aws.links import LinkStore
from clouds.aws.organizations import Organizations, account_email, account_name
from clouds.aws.sessions import AwsSessions
from clouds.aws.ssm_agents import SsmAgents
from clouds.aws.ssm_config import SERVICE_ROLE, SsmConfigurator
from contracts.enrollment import TAG_INSTANCE_KEY, AccountRef, TenantLink, account_tags
from contracts.errors import ErrorType, FleetpatchError, TransientCloudError
from contracts.providers import PatchGroup, Provider
from tests.support.local_aws import LocalAws


def test_links_round_trip(sessions: AwsSessions) -> None:
    store = LinkStore(sessions, f"/fleetpatch/test-{uuid.uuid4().hex[:6]}/links")
    link = TenantLink(provider=Provider.GCP, cloud_account="acme-prod-1", customer="ACME",
                      default_patch_group=PatchGroup.LATE, time_zone="Europe/London")
    assert store.get(Provider.GCP, "acme-prod-1") is None
    store.put(link)
    assert store.get(Provider.GCP, "acme-prod-1") == link
    assert store.get(Provider.AZURE, "acme-prod-1") is None
    assert store.get(Provider.GCP, "../etc") is None  # unsafe names cannot have been linked
    with pytest.raises(ValueError):
        store.put(TenantLink(provider=Provider.GCP, cloud_account="a/b", customer="x"))
    assert [l.cloud_account for l in store.list()] == ["acme-prod-1"]
    assert store.delete(Provider.GCP, "acme-prod-1") is True
    assert store.delete(Provider.GCP, "acme-prod-1") is False


def test_vending_is_asynchronous_adopts_by_email_and_tags(local_aws: LocalAws, sessions: AwsSessions) -> None:
    org = Organizations(sessions)
    cloud_account = f"proj-{uuid.uuid4().hex[:8]}"
    email = account_email(Provider.GCP, cloud_account, prefix="fleetpatch", domain="systems.example")
    name = account_name("ACME", Provider.GCP, cloud_account, prefix="fleetpatch")
    assert org.find(email, Provider.GCP, cloud_account) is None

    request = org.submit(name, email, account_tags("ACME", Provider.GCP, cloud_account))
    assert org.status(request).state == "IN_PROGRESS"
    local_aws.advance(31)
    done = org.status(request)
    assert done.state == "SUCCEEDED" and done.account_id
    assert org.find(email, Provider.GCP, cloud_account) == done.account_id
    assert org.tags_of(done.account_id)["fleetpatch:cloud-account"] == cloud_account

    again = org.submit(name, email, {})
    local_aws.advance(31)
    failed = org.status(again)
    assert (failed.state, failed.failure_reason) == ("FAILED", "EMAIL_ALREADY_EXISTS")


def test_a_sixth_account_request_in_progress_is_a_retryable_busy(local_aws: LocalAws, sessions: AwsSessions) -> None:
    org = Organizations(sessions)
    local_aws.advance(31)  # settle what other tests left in progress
    stem = uuid.uuid4().hex[:8]
    for n in range(5):
        org.submit(f"busy-{stem}-{n}", f"busy-{stem}-{n}@systems.example", {})
    with pytest.raises(TransientCloudError) as busy:
        org.submit(f"busy-{stem}-5", f"busy-{stem}-5@systems.example", {})
    assert busy.value.type is ErrorType.AWS_THROTTLED
    local_aws.advance(31)


def test_ssm_configuration_applies_once_and_reapplies_idempotently(sessions: AwsSessions, systems_account: AccountRef) -> None:
    configurator = SsmConfigurator(sessions)
    first = configurator.apply(systems_account, version=1)
    assert first.changed and first.service_role == SERVICE_ROLE
    assert len(first.baselines) == 24 and len(set(first.baselines.values())) == 24
    second = configurator.apply(systems_account, version=1)
    assert not second.changed
    assert second.baselines == first.baselines
    assert second.inventory_association_id == first.inventory_association_id
    assert configurator.apply(systems_account, version=2).changed  # a new version re-applies

    ssm = sessions.in_account("ssm", systems_account.role_arn)
    mappings = ssm.describe_patch_groups()["Mappings"]
    per_group = {g: sum(1 for m in mappings if m["PatchGroup"] == g) for g in ("early", "on-time", "late")}
    assert per_group == {"early": 8, "on-time": 8, "late": 8}
    ubuntu_late = ssm.get_patch_baseline(BaselineId=first.baselines["ubuntu/late"])
    windows_late = ssm.get_patch_baseline(BaselineId=first.baselines["windows/late"])
    assert "ApproveAfterDays" not in ubuntu_late["ApprovalRules"]["PatchRules"][0]  # SSM refuses it there
    assert windows_late["ApprovalRules"]["PatchRules"][0]["ApproveAfterDays"] == 14
    iam = sessions.in_account("iam", systems_account.role_arn)
    attached = iam.list_attached_role_policies(RoleName=SERVICE_ROLE)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonSSMManagedInstanceCore"]
    trust = iam.get_role(RoleName=SERVICE_ROLE)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(unquote(trust)) if isinstance(trust, str) else trust
    (statement,) = trust["Statement"]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": systems_account.account_id}


def test_an_aws_link_is_a_secure_string(sessions: AwsSessions) -> None:
    prefix = f"/fleetpatch/test-{uuid.uuid4().hex[:6]}/links"
    store = LinkStore(sessions, prefix)
    link = TenantLink(provider=Provider.AWS, cloud_account="111122223333", customer="ACME",
                      role_arn="arn:aws:iam::111122223333:role/FleetpatchAccess", external_id="ext-5f0c2a8e")
    store.put(link)
    ssm = sessions.management("ssm")
    (parameter,) = ssm.get_parameters_by_path(Path=prefix, Recursive=True)["Parameters"]
    assert parameter["Type"] == "SecureString"
    assert store.get(Provider.AWS, "111122223333") == link and store.list() == [link]


def test_activation_retry_replaces_the_earlier_one_and_tags_land(
    local_aws: LocalAws, sessions: AwsSessions, systems_account: AccountRef
) -> None:
    agents = SsmAgents(sessions)
    SsmConfigurator(sessions).ensure_service_role(systems_account)
    tags = {"Patch Group": "early", TAG_INSTANCE_KEY: "proj/123"}
    kwargs = dict(service_role=SERVICE_ROLE, default_instance_name="web-1", idempotency_key="enroll/x/run-1",
                  tags=tags, expiry=timedelta(hours=1))
    first = agents.create_activation(systems_account, **kwargs)
    second = agents.create_activation(systems_account, **kwargs)  # a retried activity
    ssm = sessions.in_account("ssm", systems_account.role_arn)
    listed = [a["ActivationId"] for a in ssm.describe_activations()["ActivationList"]]
    assert listed == [second.id] and first.id != second.id

    assert agents.find(systems_account, activation_id=second.id) is None
    session = local_aws.agent(ssm, {"ActivationId": second.id, "ActivationCode": second.code})
    found = agents.find(systems_account, activation_id=second.id)
    assert found is not None and found.instance_id == session.instance_id
    assert found.ping_status == "Online" and found.tags["Patch Group"] == "early"
    assert agents.find(systems_account, instance_key="proj/123").instance_id == session.instance_id
    agents.tag(systems_account, found.instance_id, {"Patch Group": "late"})
    assert agents.tags(systems_account, found.instance_id)["Patch Group"] == "late"
    agents.deregister(systems_account, found.instance_id)
    assert agents.find(systems_account, instance_key="proj/123") is None


def test_check_activation_tells_usable_used_expired_and_deleted(
    local_aws: LocalAws, sessions: AwsSessions, systems_account: AccountRef
) -> None:
    """What a re-registration's check reads (a used, expired or deleted activation is replaced)."""
    agents = SsmAgents(sessions)
    SsmConfigurator(sessions).ensure_service_role(systems_account)
    ssm = sessions.in_account("ssm", systems_account.role_arn)

    def new(key: str, expiry: timedelta = timedelta(hours=1), now: datetime | None = None):
        return agents.create_activation(systems_account, service_role=SERVICE_ROLE, default_instance_name="vm",
                                        idempotency_key=key, tags={}, expiry=expiry, now=now)

    fresh, used, gone = new("k/fresh"), new("k/used"), new("k/gone")
    assert agents.check_activation(systems_account, fresh.id).usable
    local_aws.agent(ssm, {"ActivationId": used.id, "ActivationCode": used.code})
    check = agents.check_activation(systems_account, used.id)
    assert check.exists and check.used and not check.usable
    agents.delete_activation(systems_account, gone.id)
    assert not agents.check_activation(systems_account, gone.id).exists
    # The emulator's clock (other tests of the folder move it): when the fresh one was created.
    (listed,) = ssm.describe_activations(Filters=[{"FilterKey": "ActivationIds", "FilterValues": [fresh.id]}])["ActivationList"]
    short = new("k/short", timedelta(seconds=20), now=listed["CreatedDate"] + timedelta(seconds=5))
    local_aws.control("/__fleetpatch/clock", "POST", {"advance_seconds": 30})
    check = agents.check_activation(systems_account, short.id)
    assert check.exists and check.expired and not check.usable


@pytest.mark.parametrize(("service", "action"), [("ssm", "GetParameter"), ("sts", "AssumeRole"),
                                                  ("iam", "GetRole")])
def test_access_denied_is_not_retryable_and_says_what(local_aws: LocalAws, sessions: AwsSessions,
                                                      systems_account: AccountRef, service: str,
                                                      action: str) -> None:
    from workers.interceptors import to_application_error

    local_aws.control("/__fleetpatch/faults", "POST", {"service": service, "action": action, "error": "AccessDenied"})
    try:
        with pytest.raises(FleetpatchError) as denied:
            if service == "ssm":
                LinkStore(sessions, "/fleetpatch/denied/links").get(Provider.GCP, "acme-prod-1")
            else:
                SsmConfigurator(sessions).ensure_service_role(systems_account)
    finally:
        local_aws.control("/__fleetpatch/faults", "DELETE")
    assert denied.value.type is ErrorType.AWS_ACCESS_DENIED and not denied.value.retryable
    assert f"{service}:{action}" in str(denied.value) and "AccessDenied" in str(denied.value)
    failure = to_application_error(denied.value)
    assert failure.non_retryable and failure.type == ErrorType.AWS_ACCESS_DENIED.value
