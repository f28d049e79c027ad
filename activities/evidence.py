"""EnrollVm's record of how a VM proved its identity, into the estate store (aws worker).

The activity receives the evidence already reduced to what may be kept (key, digest, times, the
run): the raw identity never reaches it, its logs or the store.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from contracts.evidence import EnrollmentEvidence, RecordEvidenceResult
from contracts.models import ActivityName
from estate import evidence
from estate.db import transaction


class EvidenceActivities:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._store_sessions = sessions

    def all(self) -> list:
        return [self.record_enrollment_evidence]

    @activity.defn(name=ActivityName.RECORD_ENROLLMENT_EVIDENCE)
    def record_enrollment_evidence(self, inp: EnrollmentEvidence) -> RecordEvidenceResult:
        with transaction(self._store_sessions) as session:
            created = evidence.record(session, inp)
        activity.logger.info("enrollment evidence recorded", extra={
            "instance_key": inp.instance_key, "provider": inp.provider, "key_kind": inp.key_kind, "evidence_created": created,
        })
        return RecordEvidenceResult(created=created)
