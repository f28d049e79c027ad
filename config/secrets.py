"""Secrets refused at start-up: empty, short or placeholder values never open anything.

A setting that holds a secret (admin token, challenge key, sealing key, codec keys) is either
unset or strong: at least ``MIN_LENGTH`` characters, not a value shipped in an example file and
not an obvious placeholder. The refusal names the setting and never echoes the value.
"""

from __future__ import annotations

import re

MIN_LENGTH = 32
#: values that stand for "put a real secret here" (deploy/*.env.example and common habits)
PLACEHOLDER = re.compile(
    r"change[-_ ]?me|replace[-_ ]?me|placeholder|example|secret[-_ ]?here|your[-_ ]|"
    r"^(x+|\.+|0+|1234.*|password.*|secret|test|todo|none|null)$",
    re.IGNORECASE,
)


class WeakSecret(ValueError):
    """A secret setting is empty, short or a placeholder."""


def weakness(value: str) -> str | None:
    """Why ``value`` cannot be a secret, or None when it can."""
    if not value.strip():
        return "is empty"
    if value != value.strip():
        return "has leading or trailing whitespace"
    if PLACEHOLDER.search(value):
        return "is a placeholder (an example value), not a secret"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    return None


def check(setting: str, value: str) -> str:
    """``value`` when it is strong enough, else WeakSecret naming ``setting`` (not the value)."""
    problem = weakness(value)
    if problem:
        raise WeakSecret(f"{setting} {problem}: set a random value of at least {MIN_LENGTH} "
                         "characters (e.g. `openssl rand -base64 48`), or leave it unset")
    return value
