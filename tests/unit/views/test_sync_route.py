"""POST /v1/admin/compliance/sync starts the real ComplianceSync workflow (stub aws activities):
202 + Location and progress, or the result with wait=true; customer tokens are refused."""

from __future__ import annotations

import httpx
from temporalio import activity
from temporalio.worker import Worker

from clients.api.app import create_app
from clients.api.gateway import TemporalGateway
from contracts import taskqueues
from contracts.compliance import (
    ListSyncAccountsInput,
    ListSyncAccountsResult,
    RecordAggregatesInput,
    RecordAggregatesResult,
    SyncAccountInput,
    SyncTarget,
)
from contracts.enrollment import AccountRef
from contracts.models import ActivityName
from contracts.estate import ApplyResult
from contracts.providers import WorkerRole
from tests.support import estate_fleet
from tests.unit.views.conftest import ADMIN, bearer
from workflows.compliance import ComplianceSyncWorkflow

ACCOUNTS = ["210000000001", "210000000002", "210000000003"]


@activity.defn(name=ActivityName.LIST_SYNC_ACCOUNTS)
async def list_accounts(inp: ListSyncAccountsInput) -> ListSyncAccountsResult:
    chosen = inp.only_accounts or ACCOUNTS
    return ListSyncAccountsResult([SyncTarget(AccountRef(a, f"arn:aws:iam::{a}:role/x")) for a in chosen])


@activity.defn(name=ActivityName.SYNC_ACCOUNT_ESTATE)
async def sync_account(inp: SyncAccountInput) -> ApplyResult:
    return ApplyResult(inp.target.account.account_id, instances=4)


@activity.defn(name=ActivityName.RECORD_COMPLIANCE_AGGREGATES)
async def aggregates(inp: RecordAggregatesInput) -> RecordAggregatesResult:
    return RecordAggregatesResult(rows=2)


async def test_sync_route_starts_reports_and_waits(env, queue_prefix, tmp_path, customer_tokens, estate_dir) -> None:
    settings = estate_fleet.settings_for(estate_dir, ADMIN).model_copy(update={"task_queue_prefix": queue_prefix})
    app = create_app(settings, TemporalGateway.for_client(env.client))
    orchestrator = Worker(env.client, task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, queue_prefix),
                          workflows=[ComplianceSyncWorkflow])
    aws = Worker(env.client, task_queue=taskqueues.for_role(WorkerRole.AWS, queue_prefix),
                 activities=[list_accounts, sync_account, aggregates])
    async with orchestrator, aws, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api:
        admin = bearer(ADMIN)
        done = await api.post("/v1/admin/compliance/sync", params={"wait": "true"}, json={}, headers=admin)
        assert done.status_code == 200, done.text
        assert done.json()["status"]["accounts_done"] == 3 and done.json()["aggregate_rows"] == 2

        started = await api.post("/v1/admin/compliance/sync", json={"accounts": ["210000000002"]}, headers=admin)
        assert started.status_code == 202 and started.headers["location"] == started.json()["status_url"]
        await env.client.get_workflow_handle(started.json()["workflow_id"]).result()
        status = (await api.get(started.headers["location"], headers=admin)).json()
        assert status["finished"] and status["accounts_total"] == 1 and status["instances"] == 4

        assert (await api.post("/v1/admin/compliance/sync", json={}, headers=bearer(customer_tokens["acme"]))).status_code == 403
        bad = await api.post("/v1/admin/compliance/sync", json={"accounts": ["12"]}, headers=admin)
        assert bad.status_code == 400 and bad.json()["field"] == "accounts.0"
        missing = await api.get("/v1/admin/compliance/sync/compliance-sync/manual/nope", headers=admin)
        assert missing.status_code == 404


async def test_dashboard_release_goes_through_the_windows_release_path(dev_env, estate_dir, customer_tokens) -> None:
    """An admin's release reaches Temporal's schedules (a dev server: here no such window, 404); a
    customer's never does."""
    import re
    import uuid

    app = create_app(estate_fleet.settings_for(estate_dir, ADMIN), TemporalGateway.for_client(dev_env.client))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as web:
        async def sign_in(token: str) -> str:
            web.cookies.clear()
            page = await web.get("/dashboard/signin")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            assert (await web.post("/dashboard/signin", data={"token": token, "csrf": csrf})).status_code == 303
            overview = await web.get("/dashboard")
            return re.search(r'name="csrf" value="([^"]+)"', overview.text).group(1)

        csrf = await sign_in(ADMIN)
        forged = await web.post("/dashboard/windows/210000000001/on-time/release", data={"csrf": "x"})
        assert forged.status_code == 400
        missing = await web.post("/dashboard/windows/210000000001/on-time/release", data={"csrf": csrf})
        assert missing.status_code == 404 and "patch-window/210000000001/on-time" in missing.text
        csrf = await sign_in(customer_tokens["acme"])
        refused = await web.post("/dashboard/windows/210000000001/on-time/release", data={"csrf": csrf})
        assert refused.status_code == 403
        refused = await web.post("/dashboard/customers/acme/windows/on-time/release", data={"csrf": csrf})
        assert refused.status_code == 403
        csrf = await sign_in(ADMIN)  # a customer-scoped ring: released in every account of the customer
        forged = await web.post("/dashboard/customers/acme/windows/on-time/release", data={"csrf": "x"})
        assert forged.status_code == 400
        # a customer no test gives windows (the dev server is shared by the session's tests)
        nobody = f"nobody-{uuid.uuid4().hex[:8]}"
        missing = await web.post(f"/dashboard/customers/{nobody}/windows/on-time/release", data={"csrf": csrf})
        assert missing.status_code == 404 and f"of customer {nobody}" in missing.text
