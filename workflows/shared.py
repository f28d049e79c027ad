"""Helpers every fleetpatch workflow uses: error unwrapping, search attributes (calls: ``workflows.calls``)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, FailureError


def application_error(err: BaseException) -> ApplicationError:
    """The business error inside an activity/child failure, or a generic one."""
    current: BaseException | None = err
    while current is not None:
        if isinstance(current, ApplicationError) and current.type:
            return ApplicationError(current.message, type=current.type, non_retryable=True)
        if isinstance(current, (ActivityError, ChildWorkflowError, FailureError)):
            current = current.cause
        else:
            break
    return ApplicationError(str(err), type="InternalError", non_retryable=True)


def upsert(*pairs: SearchAttributePair[Any]) -> None:
    workflow.upsert_search_attributes(list(pairs))
