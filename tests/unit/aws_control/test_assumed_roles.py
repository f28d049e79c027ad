"""clouds.aws.sessions.AssumedRoles: the one cache of assumed-role sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from clouds.aws.sessions import AssumedRoles

ROLE = "arn:aws:iam::111122223333:role/FleetpatchAccess"
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


class FakeSts:
    """Counts AssumeRole calls; each answer is valid for one hour from the clock's now."""

    def __init__(self, clock: list[datetime], naive: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self._clock = clock
        self._naive = naive

    def assume_role(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        expires = self._clock[0] + timedelta(hours=1)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA{len(self.calls):016d}",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": expires.replace(tzinfo=None) if self._naive else expires,
            }
        }


def _roles(now: list[datetime], **kwargs: Any) -> AssumedRoles:
    return AssumedRoles(session_name="fleetpatch-test", clock=lambda: now[0], **kwargs)


def test_cached_until_five_minutes_before_expiry() -> None:
    now = [NOW]
    sts = FakeSts(now)
    roles = _roles(now)
    first = roles.session(lambda: sts, ROLE)
    now[0] = NOW + timedelta(minutes=54)
    assert roles.session(lambda: sts, ROLE) is first
    assert len(sts.calls) == 1
    now[0] = NOW + timedelta(minutes=55)  # inside the refresh margin: assume again
    second = roles.session(lambda: sts, ROLE)
    assert second is not first
    assert second.get_credentials().access_key == "ASIA0000000000000002"
    assert len(sts.calls) == 2


def test_the_sts_client_is_made_only_on_a_miss() -> None:
    now = [NOW]
    sts = FakeSts(now)
    made: list[int] = []

    def factory() -> FakeSts:
        made.append(1)
        return sts

    roles = _roles(now)
    roles.session(factory, ROLE)
    roles.session(factory, ROLE)
    assert len(made) == 1


def test_external_id_is_part_of_the_key_and_the_call() -> None:
    now = [NOW]
    sts = FakeSts(now)
    roles = _roles(now, region="eu-west-1")
    plain = roles.session(lambda: sts, ROLE)
    with_id = roles.session(lambda: sts, ROLE, "ext-1")
    assert plain is not with_id
    assert sts.calls == [
        {"RoleArn": ROLE, "RoleSessionName": "fleetpatch-test"},
        {"RoleArn": ROLE, "RoleSessionName": "fleetpatch-test", "ExternalId": "ext-1"},
    ]
    assert with_id.region_name == "eu-west-1"


def test_naive_expiration_is_read_as_utc() -> None:
    now = [NOW]
    sts = FakeSts(now, naive=True)
    roles = _roles(now)
    first = roles.session(lambda: sts, ROLE)
    now[0] = NOW + timedelta(minutes=30)
    assert roles.session(lambda: sts, ROLE) is first


def test_sts_failures_reach_the_caller_and_nothing_is_cached() -> None:
    now = [NOW]

    class Refusing:
        def assume_role(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole")

    roles = _roles(now)
    with pytest.raises(ClientError):
        roles.session(Refusing, ROLE)
    sts = FakeSts(now)
    roles.session(lambda: sts, ROLE)
    assert len(sts.calls) == 1
