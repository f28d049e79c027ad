"""GCP SDK failures mapped to fleetpatch's own error types, in this one place.

``google-cloud-compute`` (REST transport) raises ``google.api_core.exceptions`` for HTTP error
answers, ``requests`` exceptions for network failures and ``google.auth`` exceptions for
credential trouble. Callers of :mod:`clouds.gcp.compute` see only:

- ``InstanceRefused(InstanceNotFound)``: the instance does not exist (404);
- ``TransientCloudError``: throttled (429), a server error (5xx), a timeout or the network;
  retried by Temporal;
- :class:`GcpAccessDenied`: the worker's credentials may not read the instance (401/403);
- :class:`GcpRequestRefused`: any other answer the API gives (a 4xx we did not expect).
"""

from __future__ import annotations

import requests
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions

from contracts.errors import ErrorType, FleetpatchError, InstanceRefused, TransientCloudError

#: The type carried by retryable failures (JWKS or Compute API unreachable or throttled):
#: contracts' own "cloud unavailable" type, as for every other cloud.
UNAVAILABLE = ErrorType.CLOUD_UNAVAILABLE


class GcpAccessDenied(FleetpatchError):
    """The gcp worker's credentials are not allowed to read instances: an operator must grant
    ``compute.instances.get`` in the customer project. Not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(ErrorType.CONFIGURATION_INVALID, reason)


class GcpRequestRefused(FleetpatchError):
    """The Compute API refused a request for a reason that waiting will not fix."""

    def __init__(self, reason: str) -> None:
        super().__init__(ErrorType.CONFIGURATION_INVALID, reason)


#: What an SDK call can raise: catch exactly these around a call and map them. Anything else is a
#: bug and should surface as it is.
SDK_ERRORS: tuple[type[BaseException], ...] = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    requests.exceptions.RequestException,
    TimeoutError,
    ConnectionError,
)


def map_compute_error(exc: BaseException, what: str) -> FleetpatchError:
    """The fleetpatch error for one of :data:`SDK_ERRORS` raised while calling the Compute API
    about ``what`` (a resource name, for messages). The caller raises it ``from exc``."""
    if isinstance(exc, api_exceptions.NotFound):
        return InstanceRefused(ErrorType.INSTANCE_NOT_FOUND, f"{what} does not exist")
    if isinstance(exc, api_exceptions.TooManyRequests):
        return TransientCloudError(UNAVAILABLE, f"Compute API throttled reading {what}")
    if isinstance(exc, (api_exceptions.ServerError, api_exceptions.RetryError)):
        return TransientCloudError(UNAVAILABLE, f"Compute API failed reading {what}: {_short(exc)}")
    if isinstance(exc, (api_exceptions.Unauthorized, api_exceptions.Forbidden)):
        return GcpAccessDenied(
            f"the gcp worker may not read {what} (grant compute.instances.get): {_short(exc)}"
        )
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return GcpRequestRefused(f"Compute API refused reading {what}: {_short(exc)}")
    if isinstance(exc, (requests.exceptions.RequestException, auth_exceptions.TransportError)):
        return TransientCloudError(UNAVAILABLE, f"cannot reach the Compute API: {_short(exc)}")
    if isinstance(exc, auth_exceptions.DefaultCredentialsError):
        return GcpAccessDenied(f"the gcp worker has no usable Google credentials: {_short(exc)}")
    if isinstance(exc, auth_exceptions.RefreshError):
        return GcpAccessDenied(f"the gcp worker's Google credentials were refused: {_short(exc)}")
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return TransientCloudError(UNAVAILABLE, f"cannot reach the Compute API: {_short(exc)}")
    return GcpRequestRefused(f"Compute API call failed: {_short(exc)}")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
