"""Helpers every fleetpatch workflow uses: error unwrapping, search attributes (calls: ``workflows.calls``)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts.failures import business_failure


def application_error(err: BaseException) -> ApplicationError:
    """The business error inside an activity/child failure, or a generic one."""
    found = business_failure(err)
    if found is not None:
        return ApplicationError(found.message, type=found.type, non_retryable=True)
    return ApplicationError(str(err), type="InternalError", non_retryable=True)


def upsert(*pairs: SearchAttributePair[Any]) -> None:
    workflow.upsert_search_attributes(list(pairs))
