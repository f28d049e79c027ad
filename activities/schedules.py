"""Patch-window schedule activities (orchestrator worker: they talk to Temporal itself)."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client

from config.settings import PatchingSettings
from contracts.errors import ErrorType, FleetpatchError
from contracts.models import ActivityName
from contracts.patch_config import WindowConfigError
from contracts.patching import EnsureWindowsInput, EnsureWindowsResult
from scheduling import RunShape, ensure_window_schedules


class ScheduleActivities:
    def __init__(self, client: Client, patching: PatchingSettings) -> None:
        self._client = client
        self._shape = RunShape.from_settings(patching)

    def all(self) -> list:
        return [self.ensure_window_schedules]

    @activity.defn(name=ActivityName.ENSURE_WINDOW_SCHEDULES)
    async def ensure_window_schedules(self, inp: EnsureWindowsInput) -> EnsureWindowsResult:
        """The three window schedules of a systems account exist and match its link."""
        try:
            result = await ensure_window_schedules(self._client, inp, self._shape)
        except WindowConfigError as err:
            raise FleetpatchError(ErrorType.CONFIGURATION_INVALID, f"link of {inp.customer}: {err}") from err
        activity.logger.info("patch windows ensured", extra={"windows_created": result.created, "windows_updated": result.updated})
        return result
