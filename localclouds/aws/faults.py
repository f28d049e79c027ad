"""Faults on demand: throttling and latency for chosen service actions.

``POST /__fleetpatch/faults`` adds a rule, ``DELETE`` clears all, ``GET`` lists them. A rule
matches a service ("ssm", "organizations", "ec2messages", "sts", ... or "*") and an action (or
"*"); it adds ``latency_ms`` and throttles a ``throttle_rate`` share of matching requests, for
at most ``count`` matching requests when given. ``"error": "AccessDenied"`` refuses every matching
request as AWS refuses a caller without permission (``AccessDeniedException`` for JSON services,
``AccessDenied`` 403 for query ones). ``hold_ms`` holds the answer back *after* the action took
effect: a caller that dies meanwhile never learns that its call succeeded (a lost answer).

Faults are for the callers under test. The local clouds' own reads of the local AWS (the EC2
IMDS looks up the instance it serves) name themselves with ``INTERNAL_AGENT`` in their
User-Agent and are never faulted: a real IMDS does not go through the throttled EC2 API.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass
from typing import Any


INTERNAL_AGENT = "fleetpatch-localcloud-internal"
"""User-Agent token (botocore ``user_agent_extra``) of a local cloud's own calls: never faulted."""


def internal(user_agent: str) -> bool:
    """Whether a request comes from another local cloud (its User-Agent names ``INTERNAL_AGENT``)."""
    return INTERNAL_AGENT in user_agent


class FaultRuleError(ValueError):
    """The rule document is malformed."""


@dataclass
class FaultRule:
    service: str
    action: str = "*"
    throttle_rate: float = 0.0
    latency_ms: int = 0
    count: int | None = None
    error: str | None = None  # "AccessDenied"
    hold_ms: int = 0  # the answer is held back this long after the action took effect

    @classmethod
    def parse(cls, document: Any) -> FaultRule:
        if not isinstance(document, dict):
            raise FaultRuleError("the rule must be a JSON object")
        service = document.get("service")
        action = document.get("action", "*")
        rate = document.get("throttle_rate", 0.0)
        latency = document.get("latency_ms", 0)
        count = document.get("count")
        error = document.get("error")
        hold = document.get("hold_ms", 0)
        if isinstance(hold, bool) or not isinstance(hold, int) or not 0 <= hold <= 120000:
            raise FaultRuleError("hold_ms must be an integer between 0 and 120000")
        if error is not None and error not in ERRORS:
            raise FaultRuleError(f"error must be one of {sorted(ERRORS)}")
        if not isinstance(service, str) or not service:
            raise FaultRuleError("service is required")
        if not isinstance(action, str) or not action:
            raise FaultRuleError("action must be a string")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise FaultRuleError("throttle_rate must be between 0 and 1")
        if isinstance(latency, bool) or not isinstance(latency, int) or not 0 <= latency <= 60000:
            raise FaultRuleError("latency_ms must be an integer between 0 and 60000")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 1):
            raise FaultRuleError("count must be a positive integer")
        return cls(service, action, float(rate), latency, count, error, hold)

    def matches(self, service: str | None, action: str | None) -> bool:
        return self.service in ("*", service) and self.action in ("*", action)


ERRORS = frozenset({"AccessDenied"})


@dataclass(frozen=True)
class FaultDecision:
    latency_s: float = 0.0
    throttle: bool = False
    error: str | None = None
    hold_s: float = 0.0


class FaultInjector:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def decide(self, service: str | None, action: str | None) -> FaultDecision:
        latency = hold = 0.0
        throttle = False
        error = None
        with self._lock:
            for rule in list(self._rules):
                if not rule.matches(service, action):
                    continue
                latency += rule.latency_ms / 1000
                hold += rule.hold_ms / 1000
                if rule.throttle_rate and self._rng.random() < rule.throttle_rate:
                    throttle = True
                error = error or rule.error
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
        return FaultDecision(latency, throttle, error, hold)
