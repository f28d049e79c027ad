"""botocore errors mapped to fleetpatch's own, in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from contracts.errors import ErrorType, FleetpatchError, TransientCloudError

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "ConcurrentModificationException",
        "EC2ThrottledException",
    }
)
ACCESS_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidClientTokenId",
     "AuthFailure", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch"}
)
SERVER_CODES = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable"})
NETWORK_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def translate(err: Exception, action: str) -> Exception:
    """The fleetpatch error for a boto error: transient ones retry, access problems do not."""
    if isinstance(err, ClientError):
        code = error_code(err)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = err.response.get("Error", {}).get("Message", "")
        if code in THROTTLING_CODES or status == 429:
            return TransientCloudError(ErrorType.AWS_THROTTLED, f"{action}: throttled ({code})")
        if code in ACCESS_CODES:
            return FleetpatchError(ErrorType.AWS_ACCESS_DENIED, f"{action}: {code}: {message}")
        if status >= 500 or code in SERVER_CODES:
            return TransientCloudError(ErrorType.CLOUD_UNAVAILABLE, f"{action}: AWS error {code} ({status})")
        return err  # a specific error the caller handles, or a bug: let it surface as is
    if isinstance(err, NETWORK_ERRORS):
        return TransientCloudError(ErrorType.CLOUD_UNAVAILABLE, f"{action}: AWS unreachable: {err}")
    if isinstance(err, NoCredentialsError):
        return FleetpatchError(ErrorType.AWS_ACCESS_DENIED, f"{action}: no AWS credentials")
    if isinstance(err, BotoCoreError):
        return TransientCloudError(ErrorType.CLOUD_UNAVAILABLE, f"{action}: {err}")
    return err


@contextmanager
def aws_call(action: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as err:
        mapped = translate(err, action)
        if mapped is err:
            raise
        raise mapped from err


F = TypeVar("F", bound=Callable[..., Any])


def mapped(action: str) -> Callable[[F], F]:
    def decorate(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with aws_call(action):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
