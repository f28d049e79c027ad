"""AWS wire-protocol pieces shared by every handler: errors, JSON/XML responses, paging, time.

Errors are answered exactly as the real JSON-1.1 services answer them (HTTP 400 with
``{"__type": ..., "message": ...}``) so botocore raises the modelled exception classes and its
retry logic treats throttling as throttling.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"


class AwsError(Exception):
    """A modelled service error; ``extra`` carries additional members (e.g. ``Reason``)."""

    def __init__(
        self, code: str, message: str, status: int = 400, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.extra = extra or {}


def validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


@dataclass
class Response:
    """What the WSGI layer writes: status, headers and body bytes."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    request_id = str(uuid.uuid4())
    body = json.dumps(payload, default=_json_default).encode()
    return Response(
        status,
        body,
        [
            ("Content-Type", JSON_CONTENT_TYPE),
            ("x-amzn-RequestId", request_id),
            ("Content-Length", str(len(body))),
        ],
    )


def json_error(error: AwsError) -> Response:
    payload: dict[str, Any] = {"__type": error.code, "message": error.message}
    payload.update(error.extra)
    return json_response(payload, error.status)


def query_error(code: str, message: str, status: int = 400) -> Response:
    """The query-protocol (STS, IAM, EC2-style) error document."""
    request_id = str(uuid.uuid4())
    body = (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return Response(
        status,
        body,
        [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id),
         ("Content-Length", str(len(body)))],
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return epoch(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def epoch(value: datetime) -> float:
    """JSON-1.1 services send timestamps as epoch seconds."""
    return value.timestamp()


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    """Accept epoch numbers or ISO-8601 strings (agents send both); None when absent/invalid."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(float(value), UTC)
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        return utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError, OSError):
        return None


def iso8601(value: datetime) -> str:
    """The agent-facing (ec2messages) timestamp form: 2015-07-09T23:22:39.019Z."""
    return utc(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{utc(value).microsecond // 1000:03d}Z"
    )


def paginate(
    items: Sequence[T], params: dict[str, Any], default: int, maximum: int, minimum: int = 1
) -> tuple[list[T], str | None]:
    """Slice ``items`` by MaxResults/NextToken; tokens are opaque, tampered ones are refused."""
    max_results = params.get("MaxResults")
    if max_results is None:
        size = default
    else:
        if not isinstance(max_results, int) or isinstance(max_results, bool):
            raise validation("MaxResults must be an integer")
        if max_results < minimum or max_results > maximum:
            raise validation(
                f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to "
                f"satisfy constraint: Member must have value between {minimum} and {maximum}"
            )
        size = max_results
    start = decode_token(params.get("NextToken"), len(items))
    page = list(items[start : start + size])
    end = start + len(page)
    return page, (encode_token(end) if end < len(items) else None)


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def decode_token(token: Any, length: int) -> int:
    if token is None or token == "":
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        offset = data["o"]
        if not isinstance(offset, int) or offset < 0 or offset > length:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError):
        raise AwsError("InvalidNextToken", "The specified token isn't valid.") from None


def tags_to_dict(tags: Any) -> dict[str, str]:
    """[{Key, Value}] -> dict, refusing malformed entries."""
    if tags is None:
        return {}
    if not isinstance(tags, list):
        raise validation("Tags must be a list")
    result: dict[str, str] = {}
    for tag in tags:
        if not isinstance(tag, dict) or not isinstance(tag.get("Key"), str):
            raise validation("Each tag needs a Key")
        value = tag.get("Value", "")
        if not isinstance(value, str):
            raise validation("Tag values must be strings")
        result[tag["Key"]] = value
    return result


def dict_to_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def require(params: dict[str, Any], name: str, kind: type = str) -> Any:
    """A required member of the expected type, else the real ValidationException."""
    value = params.get(name)
    if value is None or (kind is str and value == ""):
        raise validation(
            f"1 validation error detected: Value null at '{name[0].lower()}{name[1:]}' failed "
            "to satisfy constraint: Member must not be null"
        )
    if not isinstance(value, kind):
        raise validation(f"{name} has the wrong type")
    return value


def string_list(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation(f"{name} must be a list of strings")
    return value

