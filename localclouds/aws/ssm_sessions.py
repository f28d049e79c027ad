"""Session Manager in the local AWS: service settings and sessions (moto has neither).

- ``GetServiceSetting`` / ``UpdateServiceSetting`` / ``ResetServiceSetting`` for the settings
  fleetpatch reads and writes, per account and region, with AWS's defaults:
  ``/ssm/managed-instance/activation-tier`` (``standard`` | ``advanced``; once advanced, an
  account cannot go back while it has advanced nodes, so the emulator refuses the downgrade as AWS
  does with a ``ValidationException``) and ``/ssm/managed-instance/default-ec2-instance-management-role``.
- ``StartSession`` / ``TerminateSession`` / ``DescribeSessions``: a session starts only to a
  managed node of the caller's account and region that is online; a hybrid node (``mi-``) also
  needs the advanced tier, as on AWS. The answer is the real shape (``SessionId``,
  ``TokenValue``, ``StreamUrl`` on ``ssmmessages``); nothing streams behind the URL.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from localclouds.aws.context import RequestContext
from localclouds.aws.protocol import AwsError, require, validation
from localclouds.aws.ssm_state import SsmState

ACTIVATION_TIER = "/ssm/managed-instance/activation-tier"
_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {  # suffix -> (default, allowed; () = any)
    ACTIVATION_TIER: ("standard", ("standard", "advanced")),
    "/ssm/managed-instance/default-ec2-instance-management-role": ("", ()),
    "/ssm/documents/console/public-sharing-permission": ("Enable", ("Enable", "Disable")),
}


@dataclass
class _Setting:
    value: str
    modified: datetime | None = None
    modified_by: str = ""


@dataclass
class _Session:
    session_id: str
    target: str
    owner: str
    started: datetime
    document: str
    status: str = "Connected"
    ended: datetime | None = None
    reason: str = ""


@dataclass
class _Account:
    settings: dict[str, _Setting] = field(default_factory=dict)
    sessions: dict[str, _Session] = field(default_factory=dict)


class SessionService:
    def __init__(self, state: SsmState) -> None:
        self.state = state
        self._accounts: dict[tuple[str, str], _Account] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            "GetServiceSetting": self.get_service_setting,
            "UpdateServiceSetting": self.update_service_setting,
            "ResetServiceSetting": self.reset_service_setting,
            "StartSession": self.start_session,
            "TerminateSession": self.terminate_session,
            "DescribeSessions": self.describe_sessions,
        }

    def _account(self, ctx: RequestContext) -> _Account:
        return self._accounts.setdefault((ctx.account_id, ctx.region), _Account())

    def tier(self, ctx: RequestContext) -> str:
        current = self._account(ctx).settings.get(ACTIVATION_TIER)
        return current.value if current else _SETTINGS[ACTIVATION_TIER][0]

    # -- service settings ---------------------------------------------------------------------

    def _setting_id(self, ctx: RequestContext, params: dict[str, Any]) -> str:
        raw = require(params, "SettingId")
        prefix = f"arn:aws:ssm:{ctx.region}:{ctx.account_id}:servicesetting"
        suffix = raw.removeprefix(prefix)
        if suffix not in _SETTINGS:
            raise AwsError("ServiceSettingNotFound", f"ServiceSetting {raw} is not found", status=400)
        return suffix

    def _answer(self, ctx: RequestContext, suffix: str) -> dict[str, Any]:
        current = self._account(ctx).settings.get(suffix)
        default = _SETTINGS[suffix][0]
        setting: dict[str, Any] = {
            "SettingId": suffix,
            "SettingValue": current.value if current else default,
            "ARN": f"arn:aws:ssm:{ctx.region}:{ctx.account_id}:servicesetting{suffix}",
            "Status": "Customized" if current else "Default",
        }
        if current and current.modified:
            setting["LastModifiedDate"] = current.modified.timestamp()
            setting["LastModifiedUser"] = current.modified_by
        return {"ServiceSetting": setting}

    def get_service_setting(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            return self._answer(ctx, self._setting_id(ctx, params))

    def update_service_setting(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        value = require(params, "SettingValue")
        with self.state.lock:
            suffix = self._setting_id(ctx, params)
            allowed = _SETTINGS[suffix][1]
            if allowed and value not in allowed:
                raise validation(f"SettingValue {value!r} is not one of {', '.join(allowed)}")
            if suffix == ACTIVATION_TIER and value == "standard" and self.tier(ctx) == "advanced":
                raise validation("An account with advanced-instances tier cannot be changed back to standard")
            self._account(ctx).settings[suffix] = _Setting(value, ctx.now, _caller_arn(ctx))
        return {}

    def reset_service_setting(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            suffix = self._setting_id(ctx, params)
            if suffix == ACTIVATION_TIER and self.tier(ctx) == "advanced":
                raise validation("An account with advanced-instances tier cannot be changed back to standard")
            self._account(ctx).settings.pop(suffix, None)
            return self._answer(ctx, suffix)

    # -- sessions -----------------------------------------------------------------------------

    def start_session(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        target = require(params, "Target")
        document = params.get("DocumentName") or "SSM-SessionManagerRunShell"
        with self.state.lock:
            instance = self.state.region(ctx.account_id, ctx.region).instances.get(target)
            if instance is None or self.state.ping_status(instance, ctx.now) != "Online":
                raise AwsError("TargetNotConnected", f"{target} is not connected.")
            if target.startswith("mi-") and self.tier(ctx) != "advanced":
                raise AwsError(
                    "BadRequest",
                    f"{target} is a hybrid node of the standard-instances tier; Session Manager needs the advanced tier.",
                )
            session_id = f"session-{secrets.token_hex(9)}"
            self._account(ctx).sessions[session_id] = _Session(session_id, target, _caller_arn(ctx), ctx.now, document)
        return {
            "SessionId": session_id,
            "TokenValue": secrets.token_urlsafe(96),
            "StreamUrl": f"wss://ssmmessages.{ctx.region}.amazonaws.com/v1/data-channel/{session_id}"
            "?role=publish_subscribe&cell-number=AAEAAQ",
        }

    def terminate_session(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        session_id = require(params, "SessionId")
        with self.state.lock:
            session = self._account(ctx).sessions.get(session_id)
            if session is not None and session.status != "Terminated":
                session.status, session.ended, session.reason = "Terminated", ctx.now, "terminated by caller"
        return {"SessionId": session_id}

    def describe_sessions(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        state = require(params, "State")
        if state not in ("Active", "History"):
            raise validation("State must be Active or History")
        with self.state.lock:
            sessions = [
                s for s in self._account(ctx).sessions.values() if (s.status == "Terminated") == (state == "History")
            ]
            listed = [
                {
                    "SessionId": s.session_id,
                    "Target": s.target,
                    "Status": s.status,
                    "StartDate": s.started.timestamp(),
                    **({"EndDate": s.ended.timestamp()} if s.ended else {}),
                    "DocumentName": s.document,
                    "Owner": s.owner,
                }
                for s in sessions
            ]
        return {"Sessions": listed}


def _caller_arn(ctx: RequestContext) -> str:
    """Who called, as far as the emulator knows (it keeps no IAM identities of its own)."""
    return f"arn:aws:iam::{ctx.account_id}:root"
