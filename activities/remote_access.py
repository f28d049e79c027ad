"""Session Manager activities (aws worker): prepare a systems account for remote access."""

from __future__ import annotations

from temporalio import activity

from clouds.aws.patch_train import PatchTrainStore
from clouds.aws.remote_access import RemoteAccess
from clouds.aws.sessions import AwsSessions
from config.settings import AwsSettings, PatchingSettings
from contracts.models import ActivityName, RemoteAccessInput, RemoteAccessResult


class RemoteAccessActivities:
    def __init__(self, aws: AwsSettings, patching: PatchingSettings, sessions: AwsSessions | None = None) -> None:
        sessions = sessions or AwsSessions(aws)
        self._remote = RemoteAccess(sessions, PatchTrainStore(sessions, patching.bucket))

    def all(self) -> list:
        return [self.enable_remote_access]

    @activity.defn(name=ActivityName.ENABLE_REMOTE_ACCESS)
    def enable_remote_access(self, inp: RemoteAccessInput) -> RemoteAccessResult:
        """Advanced activation tier and logged sessions, idempotently (see clouds/aws/remote_access.py)."""
        state = self._remote.enable(inp.account)
        activity.logger.info("remote access enabled", extra={"account": inp.account.account_id, "changed": state.changed})
        return RemoteAccessResult(
            activation_tier=state.activation_tier,
            log_bucket=state.log_bucket,
            preferences_version=state.preferences_version,
            changed=state.changed,
        )
