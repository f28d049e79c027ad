"""The WSGI front of the local AWS: our handlers first, moto's server application for the rest.

Requests are routed by their JSON-protocol target (``X-Amz-Target: AmazonSSM.SendCommand``,
``AWSOrganizationsV20161128.CreateAccount``, ``EC2WindowsMessageDeliveryService.GetMessages``);
actions we do not implement fall through to moto's own ``DomainDispatcherApplication`` with the
request untouched. Fault rules apply to every request, ours or moto's.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from localclouds.addresses import HEALTH_BODY, HEALTH_PATH
from localclouds.aws import iam_enforcement
from localclouds.aws.auth import caller_from_environ, credential_scope
from localclouds.aws.context import PassToMoto, RequestContext
from localclouds.aws.ec2messages import MessageService
from localclouds.aws.faults import FaultDecision, FaultInjector, FaultRule, FaultRuleError, internal
from localclouds.aws.organizations import OrganizationsService
from localclouds.aws.persistence import Gate
from localclouds.aws.protocol import AwsError, Response, json_error, json_response, query_error
from localclouds.aws.ssm_association_updates import AssociationUpdates
from localclouds.aws.ssm_associations import AssociationService
from localclouds.aws.ssm_commands import CommandService
from localclouds.aws.ssm_engine import CommandEngine
from localclouds.aws.ssm_hybrid import HybridService
from localclouds.aws.ssm_instances import InstanceService
from localclouds.aws.ssm_inventory import InventoryService
from localclouds.aws.ssm_patch import PatchBaselineService
from localclouds.aws.ssm_patch_states import PatchStateService
from localclouds.aws.ssm_sessions import SessionService
from localclouds.aws.ssm_state import Clock, SsmState

log = logging.getLogger(__name__)

TARGET_PREFIXES = {
    "AmazonSSM": "ssm",
    "AWSOrganizationsV20161128": "organizations",
    "EC2WindowsMessageDeliveryService": "ec2messages",
}
MAX_BODY = 8 * 1024 * 1024
FAULTS_PATH = "/__fleetpatch/faults"
_HOLD_KEY = "fleetpatch.hold_s"
SNAPSHOT_PREFIX = "/__fleetpatch/snapshots/"
CLOCK_PATH = "/__fleetpatch/clock"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def system_clock() -> datetime:
    return datetime.now(UTC)


class OffsetClock:
    """Wall-clock time plus an offset that ``POST /__fleetpatch/clock`` moves forward, so tests
    and simulations can cross delivery timeouts, activation expiry or ping thresholds without
    waiting. Only the emulator's own services see it (moto keeps real time)."""

    RUNTIME_FIELDS = ("_base", "_lock")  # not saved: only the offset is state

    def __init__(self, base: Clock = system_clock) -> None:
        self._base = base
        self._offset = timedelta()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._base() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)


class LocalAws:
    """moto plus the SSM hybrid plane, the agent side and asynchronous Organizations."""

    def __init__(
        self,
        moto_app: WsgiApp,
        *,
        clock: Clock | None = None,
        ping_timeout: timedelta = timedelta(minutes=10),
        create_account_delay: timedelta = timedelta(seconds=3),
        default_region: str = "us-east-1",
        faults: FaultInjector | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.moto_app = moto_app
        self.clock = clock or OffsetClock()
        self.default_region = default_region
        self.faults = faults or FaultInjector()
        self.sleep = sleep
        self.ssm = SsmState(self.clock, ping_timeout)
        self.engine = CommandEngine(self.ssm)
        hybrid = self.hybrid = HybridService(self.ssm)
        baselines = PatchBaselineService(self.ssm)
        self.patch_states = PatchStateService(self.ssm, hybrid, baselines)
        self.ssm_handlers: dict[str, Any] = {
            **hybrid.handlers(),
            **InstanceService(self.ssm).handlers(),
            **CommandService(self.ssm, self.engine).handlers(),
            **baselines.handlers(),
            **self.patch_states.handlers(),
            **AssociationService(self.ssm, hybrid).handlers(),
            **InventoryService(self.ssm).handlers(),
            **SessionService(self.ssm).handlers(),
            **AssociationUpdates(self.ssm).handlers(),
        }
        self.message_handlers = MessageService(self.ssm, self.engine, hybrid).handlers()
        self.organizations = OrganizationsService(create_account_delay)
        #: requests and state saves never overlap (persistence.StateStore); set on every request
        self.gate = Gate()
        self.changed = threading.Event()

    def state_objects(self) -> dict[str, Any]:
        """The emulator's own state holders, saved and restored whole by ``persistence``
        (each may name ``RUNTIME_FIELDS`` that are not state)."""
        return {"ssm": self.ssm, "organizations": self.organizations, "clock": self.clock}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            return self._serve(environ, start_response)
        with self.gate.request():
            self.changed.set()
            return self._serve(environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            response = self.route(environ)
        except Exception:  # never let a bug look like a dropped connection
            log.exception("internal error serving %s", environ.get("PATH_INFO"))
            response = json_error(AwsError("InternalServerError", "internal error", 500))
        if response is None:
            answer = self.moto_app(environ, start_response)
            self._hold(environ)
            return answer
        self._hold(environ)
        reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 413: "Payload Too Large",
                  500: "Internal Server Error"}.get(response.status, "Unknown")
        start_response(f"{response.status} {reason}", response.headers)
        return [response.body]

    def _hold(self, environ: dict[str, Any]) -> None:
        """A fault rule's ``hold_ms``: the action took effect, its answer comes late."""
        hold = environ.get(_HOLD_KEY, 0.0)
        if hold:
            self.sleep(hold)

    # -- routing ------------------------------------------------------------------------------

    def route(self, environ: dict[str, Any]) -> Response | None:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == HEALTH_PATH:
            return json_response(HEALTH_BODY)
        if path == FAULTS_PATH:
            return self._faults(method, _read_body(environ))
        if path == CLOCK_PATH:
            return self._clock(method, _read_body(environ))
        if path.startswith(SNAPSHOT_PREFIX) and method == "GET":
            return self._snapshot(path[len(SNAPSHOT_PREFIX):])
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        prefix, _, action = target.partition(".")
        scope = credential_scope(environ.get("HTTP_AUTHORIZATION", ""))
        service = TARGET_PREFIXES.get(prefix) or (scope[3] if scope else None)
        body = b""
        form = environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
        if prefix in TARGET_PREFIXES or (not target and form):
            # Only bodies we parse are read; REST payloads (S3 objects) stream to moto untouched.
            read = _read_body(environ)
            if read is None:
                return json_error(AwsError("SerializationException", "request too large", 413))
            body = read
        if not target:
            action = _query_action(environ, body)
        if internal(environ.get("HTTP_USER_AGENT", "")):
            decision = FaultDecision()
        else:
            decision = self.faults.decide(service, action)
        environ[_HOLD_KEY] = decision.hold_s if not (decision.error or decision.throttle) else 0.0
        if decision.latency_s:
            self.sleep(decision.latency_s)
        if decision.error == "AccessDenied":
            reason = f"User is not authorized to perform: {service}:{action}"
            if target:
                return json_error(AwsError("AccessDeniedException", reason))
            return query_error("AccessDenied", reason, 403)
        if decision.throttle:
            if target:
                return json_error(AwsError("ThrottlingException", "Rate exceeded"))
            return query_error("Throttling", "Rate exceeded")
        refused = _enforce_iam(environ, service, action, body, self.default_region, json_protocol=bool(target))
        if refused is not None:
            return refused
        if not target or prefix not in TARGET_PREFIXES:
            return None
        return self._dispatch(TARGET_PREFIXES[prefix], action, environ, body)

    def _dispatch(
        self, service: str, action: str, environ: dict[str, Any], body: bytes
    ) -> Response | None:
        now = self.clock()
        if service == "organizations":
            with self.organizations.lock:
                self.organizations.settle(now)
                handler = self.organizations.handlers().get(action)
                return self._run(handler, environ, body, now) if handler else None
        handlers = self.ssm_handlers if service == "ssm" else self.message_handlers
        handler = handlers.get(action)
        if handler is None:
            return None
        with self.ssm.lock:
            caller = caller_from_environ(environ, self.default_region)
            region = self.ssm.region(caller.account_id, caller.region)
            self.hybrid.ec2.refresh(region)
            self.engine.advance(region, now)
            return self._run(handler, environ, body, now)

    def _run(self, handler: Any, environ: dict[str, Any], body: bytes,
             now: datetime) -> Response | None:
        try:
            params = json.loads(body or b"{}")
            if not isinstance(params, dict):
                raise ValueError
        except ValueError:
            return json_error(AwsError("SerializationException", "The request body is not a "
                                                                 "JSON object."))
        host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
        ctx = RequestContext(
            caller=caller_from_environ(environ, self.default_region),
            now=now,
            environ=environ,
            body=body,
            base_url=f"{environ.get('wsgi.url_scheme', 'http')}://{host}",
        )
        try:
            result = handler(ctx, params)
        except AwsError as error:
            return json_error(error)
        except (TypeError, AttributeError, KeyError, ValueError):
            # Members of the wrong JSON type (botocore never sends them; raw callers may).
            log.warning("malformed %s request", environ.get("HTTP_X_AMZ_TARGET"), exc_info=True)
            return json_error(AwsError("SerializationException",
                                       "A member of the request has the wrong type."))
        if isinstance(result, PassToMoto):
            return None
        return json_response(result)

    # -- emulator control ---------------------------------------------------------------------

    def _faults(self, method: str, body: bytes | None) -> Response:
        if method == "DELETE":
            self.faults.clear()
            return json_response({"rules": []})
        if method == "GET":
            return json_response({"rules": self.faults.rules()})
        if method != "POST":
            return json_response({"error": "use GET, POST or DELETE"}, 400)
        try:
            self.faults.add(FaultRule.parse(json.loads(body or b"null")))
        except (ValueError, FaultRuleError) as error:
            return json_response({"error": str(error)}, 400)
        return json_response({"rules": self.faults.rules()})

    def _clock(self, method: str, body: bytes | None) -> Response:
        if method == "POST":
            if not isinstance(self.clock, OffsetClock):
                return json_response({"error": "this clock cannot be moved"}, 400)
            try:
                seconds = json.loads(body or b"null")["advance_seconds"]
                if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not (
                    0 <= seconds <= 400 * 86400
                ):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return json_response({"error": "send {\"advance_seconds\": N}, N >= 0"}, 400)
            self.clock.advance(seconds)
        return json_response({"now": self.clock().isoformat()})

    def _snapshot(self, token: str) -> Response:
        with self.ssm.lock:
            document = self.patch_states.snapshot_document(token)
        if document is None:
            return json_response({"error": "no such snapshot"}, 404)
        return json_response(document)


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """Read the whole body once and put it back, so moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY:
        return None
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _query_action(environ: dict[str, Any], body: bytes) -> str | None:
    """The Action of a query-protocol request (STS, IAM, ...), from the form body or the URL."""
    form = parse_qs(body.decode("utf-8", "replace")) if body else {}
    query = parse_qs(environ.get("QUERY_STRING", ""))
    values = form.get("Action") or query.get("Action")
    return values[0] if values else None


def _enforce_iam(environ: dict[str, Any], service: str | None, action: str | None, body: bytes,
                 default_region: str, *, json_protocol: bool) -> Response | None:
    """The IAM checks of iam_enforcement.py, answered as AWS answers a refusal."""
    caller = caller_from_environ(environ, default_region)
    try:
        if service == "sts" and action == "AssumeRole":
            role_arn = (parse_qs(body.decode("utf-8", "replace")).get("RoleArn") or [""])[0]
            iam_enforcement.check_assume_role(caller.account_id, role_arn)
        iam_enforcement.check_action(caller.access_key, service, action)
    except iam_enforcement.Denied as denied:
        if json_protocol:
            return json_error(AwsError("AccessDeniedException", f"User is {denied}"))
        return query_error("AccessDenied", f"User is {denied}", status=403)
    return None


def make_app(**kwargs: Any) -> LocalAws:
    """LocalAws in front of a fresh moto server application."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return LocalAws(DomainDispatcherApplication(create_backend_app), **kwargs)


def make_server(host: str, port: int, app: LocalAws) -> Any:
    """A threaded werkzeug server with moto's request handler (keeps S3 header spellings)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server as werkzeug_server

    return werkzeug_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
