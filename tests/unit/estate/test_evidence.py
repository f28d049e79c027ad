"""Identity evidence: recorded by the enrollment whichever comes first, the enrollment or the
instance's first sync; kept through later syncs; joined to its own instance only."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from contracts.estate import AccountSnapshot, InstanceSnapshot
from contracts.evidence import EnrollmentEvidence, KeyKind, identity_digest, signing_key
from estate import db, evidence, reads, writes
from estate.results import Scope
from estate.schema import EnrollmentEvidenceRow

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "111111111111"
ADMIN = Scope.everything()
DIGEST = hashlib.sha256(b"identity").hexdigest()


def proof(mid: str | None = "mi-0000000000000001", key: str = "proj/1001", run: str = "run-1",
          customer: str = "acme", at: datetime = T0) -> EnrollmentEvidence:
    return EnrollmentEvidence(
        workflow_id=f"enroll/gcp/{key}", run_id=run, provider="gcp", instance_key=key, identity_sha256=DIGEST,
        verified_at=at, key_kind=KeyKind.KID.value, key_id="0e72da1df501ca6f756bf103fd7c720294772506",
        cloud_account=key.split("/")[0], customer=customer, systems_account=ACCOUNT, managed_instance_id=mid,
        patch_group="early",
    )


def snapshot(*instances: InstanceSnapshot, at: datetime = T0) -> AccountSnapshot:
    return AccountSnapshot(systems_account=ACCOUNT, taken_at=at, instances=list(instances))


def synced(mid: str = "mi-0000000000000001", key: str = "proj/1001", customer: str = "acme") -> InstanceSnapshot:
    """An instance as ComplianceSync sees it: no evidence of its own (SSM has none)."""
    return InstanceSnapshot(managed_instance_id=mid, systems_account=ACCOUNT, instance_key=key, provider="gcp",
                            customer=customer, cloud_account="proj", workflow_id=f"enroll/gcp/{key}",
                            workflow_run_id="run-1")


def detail(sessions, mid: str = "mi-0000000000000001", scope: Scope = ADMIN):
    with sessions() as session:
        return reads.instance_detail(session, scope, mid)


@pytest.mark.parametrize("enrollment_first", [True, False])
def test_evidence_lands_whichever_comes_first_and_survives_later_syncs(sessions, enrollment_first: bool) -> None:
    steps = [lambda s: evidence.record(s, proof()), lambda s: writes.apply_account_snapshot(s, snapshot(synced()))]
    for step in steps if enrollment_first else steps[::-1]:
        with db.transaction(sessions) as session:
            step(session)
    with db.transaction(sessions) as session:  # a later sync rewrites the instance row
        writes.apply_account_snapshot(session, snapshot(synced(), at=T0 + timedelta(minutes=15)))
    got = detail(sessions)
    assert got is not None
    assert (got.evidence.provider, got.evidence.key_kind, got.evidence.key_id) == (
        "gcp", "kid", "0e72da1df501ca6f756bf103fd7c720294772506")
    assert got.evidence.digest == DIGEST and got.evidence.verified_at == T0
    assert (got.enrollment.workflow_id, got.enrollment.run_id) == ("enroll/gcp/proj/1001", "run-1")


def test_recording_is_idempotent_per_run(sessions) -> None:
    with db.transaction(sessions) as session:
        assert evidence.record(session, proof()) is True
    with db.transaction(sessions) as session:
        assert evidence.record(session, proof()) is False  # the activity retried
        assert session.scalar(select(func.count()).select_from(EnrollmentEvidenceRow)) == 1


def test_a_reenrolled_vm_shows_each_instance_its_own_enrollment(sessions) -> None:
    """The first enrollment names mi-...1; after re-enrollment mi-...2 carries the second run's proof."""
    later = T0 + timedelta(days=3)
    with db.transaction(sessions) as session:
        evidence.record(session, proof())
        evidence.record(session, replace(proof("mi-0000000000000002", run="run-2", at=later), key_id="kid-2"))
        writes.apply_account_snapshot(session, snapshot(synced(), synced("mi-0000000000000002")))
    first, second = detail(sessions), detail(sessions, "mi-0000000000000002")
    assert (first.evidence.key_id, first.enrollment.run_id) == ("0e72da1df501ca6f756bf103fd7c720294772506", "run-1")
    assert (second.evidence.key_id, second.enrollment.run_id, second.evidence.verified_at) == ("kid-2", "run-2", later)


def test_without_a_managed_id_the_newest_proof_of_the_key_is_joined(sessions) -> None:
    with db.transaction(sessions) as session:
        evidence.record(session, proof(None))
        evidence.record(session, replace(proof(None, run="run-2", at=T0 + timedelta(hours=1)), key_id="newer"))
        writes.apply_account_snapshot(session, snapshot(synced()))
    assert detail(sessions).evidence.key_id == "newer"


def test_evidence_of_another_customer_is_never_joined(sessions) -> None:
    """Same provider and instance key, another tenant's proof: the instance shows none of it."""
    with db.transaction(sessions) as session:
        evidence.record(session, proof(None, customer="globex"))
        writes.apply_account_snapshot(session, snapshot(synced()))
    got = detail(sessions)
    assert got.evidence.digest is None and got.evidence.key_id is None
    assert detail(sessions, scope=Scope.of_customer("globex")) is None


def test_no_evidence_falls_back_to_the_instance_row(sessions) -> None:
    with db.transaction(sessions) as session:
        writes.apply_account_snapshot(session, snapshot(synced()))
    got = detail(sessions)
    assert got.evidence.key_id is None and got.evidence.key_kind is None
    assert got.enrollment.workflow_id == "enroll/gcp/proj/1001"  # from the instance's tags


@pytest.mark.parametrize(("change", "message"), [
    ({"identity_sha256": "not-a-digest"}, "identity_sha256"),
    ({"identity_sha256": DIGEST.upper()}, "identity_sha256"),
    ({"verified_at": datetime(2026, 11, 1)}, "timezone-aware"),
    ({"run_id": ""}, "required"),
    ({"key_id": "k" * 256}, "key_id"),
])
def test_bad_evidence_is_refused(sessions, change: dict, message: str) -> None:
    with db.transaction(sessions) as session, pytest.raises(ValueError, match=message):
        evidence.record(session, replace(proof(), **change))


def test_digest_is_canonical_json_and_the_key_comes_from_the_verifier() -> None:
    identity = {"token": "eyJhbGciOi.payload.sig"}
    assert identity_digest(identity) == hashlib.sha256(b'{"token":"eyJhbGciOi.payload.sig"}').hexdigest()
    nested = {"attested": {"signature": "MIIx", "encoding": "pkcs7"}}
    assert identity_digest(nested) == hashlib.sha256(
        json.dumps(nested, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert identity_digest(nested) == identity_digest({"attested": {"encoding": "pkcs7", "signature": "MIIx"}})
    assert signing_key({"kid": "abc", "alg": "RS256"}) == ("kid", "abc")
    assert signing_key({"form": "pkcs7", "signer_cert_sha256": "ff" * 32}) == ("signer_certificate_sha256", "ff" * 32)
    assert signing_key({"jti": "x", "key_fingerprint": "sha256:" + "aa" * 32}) == ("link_key_sha256", "sha256:" + "aa" * 32)
    assert signing_key({}) == (None, None)
    assert signing_key({"kid": "k" * 300})[1] == "k" * 255
