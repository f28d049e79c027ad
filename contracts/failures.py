"""The business failure inside a Temporal failure chain, found one way for every caller.

A workflow, an activity or a child answers a business refusal as an ``ApplicationError`` with a
type (``contracts.errors.ErrorType``); Temporal wraps it (``ActivityError``, ``ChildWorkflowError``,
``WorkflowFailureError``, ``WorkflowUpdateFailedError``). Workflows, the API and activities that
wait on other workflows all unwrap it here.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.exceptions import ApplicationError


@dataclass(frozen=True)
class BusinessFailure:
    type: str
    message: str


def business_failure(err: BaseException | None) -> BusinessFailure | None:
    """The first typed ``ApplicationError`` along ``err``'s ``cause`` chain, or None."""
    current, seen = err, 0
    while current is not None and seen < 32:
        if isinstance(current, ApplicationError) and current.type:
            return BusinessFailure(type=current.type, message=current.message)
        current, seen = getattr(current, "cause", None), seen + 1
    return None
