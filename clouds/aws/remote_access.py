"""Remote access with Session Manager in a systems account (aws worker).

When a link enables remote access, the systems account is prepared so its nodes accept sessions:

1. the activation tier goes to ``advanced`` (UpdateServiceSetting
   ``/ssm/managed-instance/activation-tier``): hybrid nodes of the standard tier accept no
   sessions. AWS never lets an account with advanced nodes go back, so this is only ever raised;
2. session logging to the systems account's own S3 bucket (the one patch windows use, under
   ``sessions/``), encrypted, through the account's Session Manager preferences: the Session
   document ``SSM-SessionManagerRunShell``, created, or updated and made default when it differs.

Each step checks first and writes only what differs, so it is safe to run at every enrollment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from clouds.aws.errors import aws_call, error_code
from clouds.aws.patch_train import PatchTrainStore
from clouds.aws.sessions import AwsSessions
from contracts.enrollment import AccountRef

ACTIVATION_TIER = "/ssm/managed-instance/activation-tier"
PREFERENCES_DOCUMENT = "SSM-SessionManagerRunShell"
SESSION_LOG_PREFIX = "sessions/"


def setting_arn(account: AccountRef, setting: str) -> str:
    return f"arn:aws:ssm:{account.region}:{account.account_id}:servicesetting{setting}"


def session_preferences(bucket: str) -> dict[str, Any]:
    """The Session Manager preferences fleetpatch sets: logs to the account's bucket, encrypted."""
    return {
        "schemaVersion": "1.0",
        "description": "Session Manager preferences set by fleetpatch: session logs in the systems account's bucket",
        "sessionType": "Standard_Stream",
        "inputs": {
            "s3BucketName": bucket,
            "s3KeyPrefix": SESSION_LOG_PREFIX,
            "s3EncryptionEnabled": True,
            "cloudWatchLogGroupName": "",
            "cloudWatchEncryptionEnabled": True,
            "kmsKeyId": "",
            "runAsEnabled": False,
            "runAsDefaultUser": "",
            "idleSessionTimeout": "20",
            "shellProfile": {"linux": "", "windows": ""},
        },
    }


@dataclass
class RemoteAccessState:
    activation_tier: str
    log_bucket: str
    preferences_version: str
    changed: list[str]


class RemoteAccess:
    def __init__(self, sessions: AwsSessions, store: PatchTrainStore) -> None:
        self._sessions = sessions
        self._store = store

    def _ssm(self, account: AccountRef) -> Any:
        return self._sessions.in_account("ssm", account.role_arn, account.external_id, account.region)

    def enable(self, account: AccountRef) -> RemoteAccessState:
        ssm, changed = self._ssm(account), []
        tier = self._ensure_advanced_tier(ssm, account, changed)
        bucket = self._store.ensure_bucket(account)
        version = self._ensure_preferences(ssm, session_preferences(bucket), changed)
        return RemoteAccessState(activation_tier=tier, log_bucket=bucket, preferences_version=version, changed=changed)

    @staticmethod
    def _ensure_advanced_tier(ssm: Any, account: AccountRef, changed: list[str]) -> str:
        arn = setting_arn(account, ACTIVATION_TIER)
        with aws_call("ssm:GetServiceSetting"):
            current = ssm.get_service_setting(SettingId=arn)["ServiceSetting"]["SettingValue"]
        if current != "advanced":
            with aws_call("ssm:UpdateServiceSetting"):
                ssm.update_service_setting(SettingId=arn, SettingValue="advanced")
            changed.append("activation-tier")
        return "advanced"

    @staticmethod
    def _ensure_preferences(ssm: Any, wanted: dict[str, Any], changed: list[str]) -> str:
        content = json.dumps(wanted, sort_keys=True)
        try:
            with aws_call("ssm:GetDocument"):
                current = ssm.get_document(Name=PREFERENCES_DOCUMENT)  # its default version
        except ClientError as err:
            if error_code(err) != "InvalidDocument":
                raise
            with aws_call("ssm:CreateDocument"):
                created = ssm.create_document(
                    Name=PREFERENCES_DOCUMENT, Content=content, DocumentType="Session", DocumentFormat="JSON"
                )
            changed.append("session-preferences")
            return str(created["DocumentDescription"]["DocumentVersion"])
        if json.loads(current["Content"]) == wanted:
            return str(current["DocumentVersion"])
        with aws_call("ssm:UpdateDocument"):
            updated = ssm.update_document(
                Name=PREFERENCES_DOCUMENT, Content=content, DocumentVersion="$LATEST", DocumentFormat="JSON"
            )
        version = str(updated["DocumentDescription"]["DocumentVersion"])
        with aws_call("ssm:UpdateDocumentDefaultVersion"):
            ssm.update_document_default_version(Name=PREFERENCES_DOCUMENT, DocumentVersion=version)
        changed.append("session-preferences")
        return version
