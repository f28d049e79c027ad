"""One strict JSON reader for everything fleetpatch parses from outside.

Signed content and request bodies are read as exactly one JSON object: UTF-8, no duplicate keys
(two parsers could otherwise read different values from the same bytes), no NaN/Infinity, no
runaway nesting. Callers turn ``StrictJsonError`` into their own refusal.
"""

from __future__ import annotations

import json
from typing import Any


class StrictJsonError(ValueError):
    """The bytes are not one strict JSON value (the message says why, without echoing input)."""


class DuplicateKey(StrictJsonError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKey(f"duplicate JSON key {key[:40]!r}")
        result[key] = value
    return result


def _constant(name: str) -> Any:
    raise StrictJsonError(f"non-standard JSON constant {name}")


def loads(data: bytes | str) -> Any:
    """Any strict JSON value."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except StrictJsonError:
        raise
    except UnicodeDecodeError:
        raise StrictJsonError("not UTF-8") from None
    except RecursionError:
        raise StrictJsonError("nested too deeply") from None
    except ValueError as err:
        raise StrictJsonError(f"not JSON: {str(err)[:80]}") from None


def loads_object(data: bytes | str) -> dict[str, Any]:
    """A strict JSON object."""
    value = loads(data)
    if not isinstance(value, dict):
        raise StrictJsonError("not a JSON object")
    return value
