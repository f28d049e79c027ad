"""Body field types that take JSON as the OpenAPI document describes it, with no coercion.

Pydantic's lax mode turns ``0`` into ``false``, ``"5"`` into ``5`` and ``0`` into 1970-01-01; the
document says ``boolean``, ``integer`` and a ``date-time`` string, so the API refuses the rest
(400) exactly as a client generated from the document expects.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, StrictBool

JsonBool = StrictBool


def _integer(value: Any) -> Any:
    # JSON Schema's integer is any number without a fractional part: 934.0 is one, "934" is not.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a JSON integer")
    return value


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a JSON number")
    return value


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a date-time string (RFC 3339, with its offset)")
    return value


#: A JSON integer or number with bounds: ``Annotated[int, Field(ge=0, le=6), INTEGER]``. The bounds
#: come before the validator: after it (``Annotated[JsonInt, Field(ge=0)]``) pydantic writes them
#: into the document as ``ge``/``le``, which are no JSON Schema keywords (clients ignore them).
INTEGER = BeforeValidator(_integer)
NUMBER = BeforeValidator(_number)
JsonInt = Annotated[int, INTEGER]
JsonNumber = Annotated[float, NUMBER]
JsonDateTime = Annotated[AwareDatetime, BeforeValidator(_text)]
