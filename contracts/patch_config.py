"""Configuration of patch windows: when each ring's window opens and how its runs patch.

Defaults per patch group, overridden per tenant link by ``TenantLink.windows[group]`` (a dict of
``WindowConfig`` field names). Default cadence: monthly, one week per ring - ``early`` on the
second Tuesday of the month ("Patch Tuesday") at 02:00 in the link's time zone, ``on-time``
exactly 7 days later, ``late`` 14 days later (days 8-14, 15-21, 22-28: always inside one month,
so every ring of a month installs that month's train).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts.providers import PatchGroup


class RebootOption(StrEnum):
    REBOOT_IF_NEEDED = "RebootIfNeeded"
    NO_REBOOT = "NoReboot"



_LIMIT = re.compile(r"^(?:[0-9]|[1-9][0-9]{0,5})%?$")
_TRAIN_HOOKS = ("refuse", "without-hooks")
_UNTRAINED = ("scan", "baseline")
_RING_SCOPES = ("customer", "account")

#: Default week of the month per ring: early on the second Tuesday ("Patch Tuesday"), on-time
#: exactly 7 days later, late 14 days later; always inside one month, so one monthly cycle.
DEFAULT_DAYS_OF_MONTH: dict[PatchGroup, tuple[int, int]] = {
    PatchGroup.EARLY: (8, 14),
    PatchGroup.ON_TIME: (15, 21),
    PatchGroup.LATE: (22, 28),
}


@dataclass
class Hooks:
    """SSM documents AWS-RunPatchBaselineWithHooks runs around the install."""

    pre_install: str = "AWS-Noop"
    post_install: str = "AWS-Noop"
    on_exit: str = "AWS-Noop"


@dataclass
class WindowConfig:
    """When a window opens and how it runs. Defaults per group; overridden per tenant link by
    ``TenantLink.windows[group]`` (a dict of these field names)."""

    # When: a calendar (all fields must match) in the link's IANA time zone, or a cron string.
    day_of_week: int = 2  # 0 = Sunday; Tuesday
    days_of_month: list[int] = field(default_factory=lambda: [8, 14])  # inclusive range
    hour: int = 2
    minute: int = 0
    cron: str | None = None  # replaces the calendar fields when set
    time_zone: str = "UTC"
    duration_minutes: int = 240
    cutoff_minutes: int = 60  # stop dispatching this long before the window ends
    # How each run patches.
    max_concurrency: str = "10%"  # a number or a percentage of the window's targets
    max_errors: str = "5%"
    reboot: str = RebootOption.REBOOT_IF_NEEDED.value
    scan_first: bool = False
    hooks: Hooks | None = None
    # AWS-RunPatchBaselineWithHooks takes no InstallOverrideList: on train rings with hooks,
    # "refuse" (default) refuses to run, "without-hooks" installs the train without the hooks.
    hooks_on_train: str = "refuse"
    # A later ring's OS with no early instance (no train entry): "baseline" (default: install what
    # the ring's baseline approves after its delay; Ubuntu and Debian, whose baselines cannot delay
    # approval, scan only and are reported "held: no early instance of this OS"), or "scan".
    untrained_os: str = "baseline"
    success_threshold: float = 0.95  # the gate of the NEXT ring compares this run's success rate
    # "customer": one train and one gate over every systems account of the customer (default);
    # "account": this systems account's own early ring only.
    ring_scope: str = "customer"
    # A later ring waits this long for the earlier ring's runs still going in any account of the
    # customer (never past its own cutoff), then holds saying which.
    ring_wait_minutes: int = 360

    @property
    def cutoff_offset_minutes(self) -> int:
        return self.duration_minutes - self.cutoff_minutes

    def describe_when(self) -> str:
        if self.cron:
            return f"cron {self.cron!r} ({self.time_zone})"
        day = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")[self.day_of_week]
        first, last = self.days_of_month
        return f"{day} {self.hour:02d}:{self.minute:02d} on days {first}-{last} ({self.time_zone})"


class WindowConfigError(ValueError):
    """A window override is malformed: the operator must fix the link."""


def window_config(group: PatchGroup | str, time_zone: str = "UTC", overrides: dict[str, Any] | None = None) -> WindowConfig:
    """The group's defaults with the link's overrides for that group applied and validated."""
    group = PatchGroup(group)
    config = WindowConfig(days_of_month=list(DEFAULT_DAYS_OF_MONTH[group]), time_zone=time_zone)
    overrides = dict(overrides or {})
    hooks = overrides.pop("hooks", None)
    known = set(WindowConfig.__dataclass_fields__) - {"hooks"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise WindowConfigError(f"window {group.value}: unknown settings {unknown}")
    for name, value in overrides.items():
        setattr(config, name, value)
    if hooks is not None:
        if not isinstance(hooks, dict) or set(hooks) - set(Hooks.__dataclass_fields__):
            raise WindowConfigError(f"window {group.value}: hooks must be an object of {sorted(Hooks.__dataclass_fields__)}")
        config.hooks = Hooks(**{k: str(v) for k, v in hooks.items()})
    validate_window_config(config, group)
    return config


def validate_window_config(config: WindowConfig, group: PatchGroup | str = "") -> None:
    where = f"window {PatchGroup(group).value}" if group else "window"

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise WindowConfigError(f"{where}: {what}")

    need(isinstance(config.day_of_week, int) and 0 <= config.day_of_week <= 6, "day_of_week is 0 (Sunday) to 6")
    days = config.days_of_month
    need(isinstance(days, list | tuple) and len(days) == 2 and all(isinstance(d, int) for d in days)
         and 1 <= days[0] <= days[1] <= 31, "days_of_month is [first, last] within 1-31")
    need(isinstance(config.hour, int) and 0 <= config.hour <= 23, "hour is 0-23")
    need(isinstance(config.minute, int) and 0 <= config.minute <= 59, "minute is 0-59")
    need(config.cron is None or (isinstance(config.cron, str) and config.cron.strip() != ""), "cron is a non-empty string")
    need(isinstance(config.time_zone, str) and config.time_zone != "", "time_zone is an IANA name")
    need(isinstance(config.duration_minutes, int) and 30 <= config.duration_minutes <= 24 * 60,
         "duration_minutes is 30 to 1440")
    need(isinstance(config.cutoff_minutes, int) and 0 <= config.cutoff_minutes < config.duration_minutes,
         "cutoff_minutes is at least 0 and less than the duration")
    need(_valid_limit(config.max_concurrency, concurrency=True), "max_concurrency is a number >= 1 or a percentage 1%-100%")
    need(_valid_limit(config.max_errors, concurrency=False), "max_errors is a number or a percentage 0%-100%")
    need(config.reboot in {r.value for r in RebootOption}, f"reboot is one of {[r.value for r in RebootOption]}")
    need(isinstance(config.scan_first, bool), "scan_first is true or false")
    need(config.hooks_on_train in _TRAIN_HOOKS, f"hooks_on_train is one of {list(_TRAIN_HOOKS)}")
    need(config.untrained_os in _UNTRAINED, f"untrained_os is one of {list(_UNTRAINED)}")
    need(config.ring_scope in _RING_SCOPES, f"ring_scope is one of {list(_RING_SCOPES)}")
    need(isinstance(config.ring_wait_minutes, int) and not isinstance(config.ring_wait_minutes, bool)
         and 0 <= config.ring_wait_minutes <= 7 * 24 * 60, "ring_wait_minutes is 0 to 10080")
    need(isinstance(config.success_threshold, int | float) and not isinstance(config.success_threshold, bool)
         and 0.0 <= config.success_threshold <= 1.0, "success_threshold is between 0 and 1")


def _valid_limit(value: Any, *, concurrency: bool) -> bool:
    if not isinstance(value, str) or not _LIMIT.match(value):
        return False
    number = int(value.rstrip("%"))
    if value.endswith("%"):
        return number <= 100 and (number >= 1 or not concurrency)
    return number >= 1 or not concurrency


def resolve_limit(value: str, total: int, *, concurrency: bool) -> int:
    """'10' or '10%' -> an absolute count for ``total`` targets, rounded the way SSM rounds:
    concurrency up (at least 1), errors down."""
    if not _valid_limit(value, concurrency=concurrency):
        raise WindowConfigError(f"{value!r} is not a valid {'concurrency' if concurrency else 'error'} limit")
    number = int(value.rstrip("%"))
    if not value.endswith("%"):
        return number
    share = number * total / 100
    return max(1, math.ceil(share)) if concurrency else math.floor(share)
