"""ComplianceSync activities (aws worker): list the systems accounts, sync one account's SSM state
into the estate store, write the compliance aggregates.

Synchronous (boto3, SQLAlchemy) methods on the worker's thread pool. The store's sessions come
from the worker (``sessions`` is a SQLAlchemy ``sessionmaker`` built from settings); these
activities and the patch windows' are the only writers of the store.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker
from temporalio import activity

from clouds.aws.links import LinkStore
from clouds.aws.organizations import Organizations
from clouds.aws.sessions import AwsSessions
from clouds.aws.ssm_estate import PART_SIZE, SsmEstateReader, build_snapshot, window_runs
from config.settings import AwsSettings
from contracts.models import ActivityName
from contracts.compliance import (
    ListSyncAccountsInput,
    ListSyncAccountsResult,
    RecordAggregatesInput,
    RecordAggregatesResult,
    RecordWindowInput,
    RecordWindowResult,
    SyncAccountInput,
    SyncTarget,
)
from contracts.enrollment import TAG_CLOUD_ACCOUNT, TAG_CUSTOMER, TAG_PROVIDER, AccountRef
from contracts.estate import ApplyResult
from contracts.patching import InstanceStatus
from contracts.providers import Provider
from estate import writes
from estate.db import transaction


class ComplianceActivities:
    def __init__(self, settings: AwsSettings, sessions: sessionmaker[Session], aws: AwsSessions | None = None,
                 part_size: int = PART_SIZE) -> None:
        self._settings = settings
        self._part_size = part_size
        self._store_sessions = sessions
        self._aws = aws or AwsSessions(settings)
        self._org = Organizations(self._aws)
        self._links = LinkStore(self._aws, settings.links_parameter_prefix)
        self._reader = SsmEstateReader(self._aws)

    def all(self) -> list:
        return [self.list_sync_accounts, self.sync_account_estate, self.record_compliance_aggregates,
                self.record_window_results]

    @activity.defn(name=ActivityName.LIST_SYNC_ACCOUNTS)
    def list_sync_accounts(self, inp: ListSyncAccountsInput) -> ListSyncAccountsResult:
        """Vended accounts (Organizations tags) and customers' own AWS accounts (links), once each."""
        targets: dict[str, SyncTarget] = {}
        for account_id, tags in self._org.systems_accounts():
            targets[account_id] = SyncTarget(
                account=AccountRef(account_id=account_id, role_arn=self._aws.role_arn_for(account_id),
                                   region=self._aws.region),
                customer=tags.get(TAG_CUSTOMER, ""), provider=tags.get(TAG_PROVIDER, ""),
                cloud_account=tags.get(TAG_CLOUD_ACCOUNT, ""),
            )
        for link in self._links.list():
            account_id = _account_of(link.role_arn) if link.provider is Provider.AWS else None
            if account_id is None:
                continue
            targets.setdefault(account_id, SyncTarget(
                account=AccountRef(account_id=account_id, role_arn=link.role_arn,
                                   external_id=link.external_id, region=self._aws.region),
                customer=link.customer, provider=Provider.AWS.value, cloud_account=link.cloud_account,
            ))
        wanted = set(inp.only_accounts)
        return ListSyncAccountsResult(targets=[t for k, t in sorted(targets.items()) if not wanted or k in wanted])

    @activity.defn(name=ActivityName.SYNC_ACCOUNT_ESTATE)
    def sync_account_estate(self, inp: SyncAccountInput) -> ApplyResult:
        """Read the account's SSM state a part at a time (``SsmEstateReader.parts``) and apply each
        part in a transaction of its own; once every part has landed, mark the instances SSM no
        longer has departed. A failed sync departs nothing (its retry reads the account again), and
        the worker holds one part, not the account, nor the store's lock while SSM answers."""
        account = inp.target.account
        result = ApplyResult(systems_account=account.account_id)
        present: set[str] = set()
        for reading in self._reader.parts(account, progress=_heartbeat, size=self._part_size):
            snapshot = build_snapshot(inp.target, inp.taken_at, reading)
            with transaction(self._store_sessions) as session:
                present |= writes.apply_account_part(session, snapshot, result)
        with transaction(self._store_sessions) as session:
            result.departed = writes.mark_departed(session, account.account_id, inp.taken_at, present)
        activity.logger.info("account synced", extra={"systems_account": account.account_id,
                                                      "instances": result.instances, "departed": result.departed})
        return result

    @activity.defn(name=ActivityName.RECORD_COMPLIANCE_AGGREGATES)
    def record_compliance_aggregates(self, inp: RecordAggregatesInput) -> RecordAggregatesResult:
        with transaction(self._store_sessions) as session:
            rows = writes.record_aggregates(session, inp.at)
        return RecordAggregatesResult(rows=rows)


    @activity.defn(name=ActivityName.RECORD_WINDOW_RESULTS)
    def record_window_results(self, inp: RecordWindowInput) -> RecordWindowResult:
        """A PatchWindow batch's results into the store, with the patch states SSM now holds."""
        reached = sorted({r.instance_id for r in inp.instances if r.status not in NOT_REACHED})
        states = self._reader.patch_states(inp.account, reached) if reached else {}
        with transaction(self._store_sessions) as session:
            recorded = writes.record_window_runs(session, window_runs(inp, states))
        return RecordWindowResult(recorded=recorded, refreshed=len(states))


#: Instances a window never ran anything on: their patch state is not re-read.
NOT_REACHED = frozenset({InstanceStatus.NOT_DISPATCHED, InstanceStatus.CANCELLED, InstanceStatus.NOT_DELIVERED})


def _account_of(role_arn: str | None) -> str | None:
    """The account id of ``arn:aws:iam::123456789012:role/Name`` (None for anything else)."""
    parts = (role_arn or "").split(":")
    if len(parts) >= 6 and parts[:3] == ["arn", "aws", "iam"] and len(parts[4]) == 12 and parts[4].isdigit():
        return parts[4]
    return None


def _heartbeat(detail: str) -> None:
    if activity.in_activity():
        activity.heartbeat(detail)
