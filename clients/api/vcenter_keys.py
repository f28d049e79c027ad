"""The vCenter token keys the API checks tokens against, without cloud credentials.

Links live in the management account's Parameter Store, which only the aws worker reads. The API
learns them the way its admin routes do: by running the read-only ``LinkAdmin`` ``list`` command
(one shared workflow id, so concurrent refreshes share one run) and keeping the vCenter links'
public keys in memory, by link id (``vc01``, or ``vc01:acme`` for a further link of a shared vCenter). The cache is refreshed when older than ``vcenter_keys_ttl``, and a token
naming an unknown vCenter refreshes it at most once per ``vcenter_keys_min_refresh``: an
unauthenticated caller cannot make the API run more than one listing per interval, whatever it
sends. A failed refresh keeps the keys it had (fail closed for vCenters it never saw). A caller
that arrives while a refresh runs waits for it; until the keys were read once, every check is
"cannot tell yet" (``TransientCloudError``: the API answers 503), never a refusal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from clients.api.gateway import TemporalGateway
from config.settings import Settings
from contracts import taskqueues
from contracts.enrollment import LinkCommand, LinkCommandResult
from contracts.errors import ErrorType, TransientCloudError
from contracts.names import WorkflowName
from contracts.providers import Provider, WorkerRole

log = logging.getLogger("fleetpatch.api")

#: the one workflow id of the API's link listing (shared by every API replica)
WORKFLOW_ID = "links/list/vcenter-keys"


class VcenterKeyCache:
    def __init__(
        self, gateway: TemporalGateway, settings: Settings, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._gateway = gateway
        self._settings = settings
        self._monotonic = monotonic
        self._keys: dict[str, list[str]] = {}
        self._loaded_at: float | None = None
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()

    async def __call__(self, vcenter_id: str) -> list[str] | None:
        api = self._settings.api
        now = self._monotonic()
        stale = self._loaded_at is None or now - self._loaded_at > api.vcenter_keys_ttl.total_seconds()
        unknown = vcenter_id not in self._keys
        may_retry = self._tried_at is None or now - self._tried_at >= api.vcenter_keys_min_refresh.total_seconds()
        if (stale or unknown) and may_retry:
            await self._refresh()
        elif self._lock.locked():
            # Another caller's refresh is under way: its answer, not the cache it is replacing.
            async with self._lock:
                pass
        if self._loaded_at is None:
            # Never read (Temporal or the aws worker not answering yet): no verdict, so no
            # refusal either; the VM retries (503) instead of being turned away for good.
            raise TransientCloudError(ErrorType.CLOUD_UNAVAILABLE, "the vCenter token keys could not be read yet")
        return self._keys.get(vcenter_id)

    def invalidate(self) -> None:
        """A link changed through this API: the next check re-reads (still rate-limited)."""
        self._loaded_at = None
        self._tried_at = None

    async def _refresh(self) -> None:
        async with self._lock:
            self._tried_at = self._monotonic()
            try:
                result = await self._list()
            except Exception as err:  # noqa: BLE001 - keep the old keys; the cause is logged, not answered
                log.warning("vCenter keys not refreshed", extra={"error": type(err).__name__})
                return
            self._keys = {
                link.cloud_account: list(link.vcenter_public_keys)
                for link in result.links
                if link.provider is Provider.VMWARE and link.vcenter_public_keys
            }
            self._loaded_at = self._monotonic()

    async def _list(self) -> LinkCommandResult:
        client = await self._gateway.client()
        command = LinkCommand(action="list", queue_prefix=self._settings.task_queue_prefix)
        return await client.execute_workflow(
            WorkflowName.LINK_ADMIN,
            command,
            id=WORKFLOW_ID,
            task_queue=taskqueues.for_role(WorkerRole.ORCHESTRATOR, self._settings.task_queue_prefix),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            execution_timeout=timedelta(minutes=1),
            result_type=LinkCommandResult,
        )
