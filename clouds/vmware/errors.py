"""pyvmomi and network exceptions mapped to fleetpatch's own errors, in this one place.

* cannot reach vCenter, timeouts, vCenter busy or failing internally -> ``TransientCloudError``
  (retried by the activity's retry policy);
* login refused, session or privilege missing -> ``VcenterAuthError`` (non-retryable,
  ``ConfigurationInvalid``: an operator must fix the credentials or the role);
* TLS certificate not trusted -> ``VcenterAuthError`` as well (configuration, not transient);
* a managed object that no longer exists -> ``InstanceRefused(InstanceNotFound)``;
* vCenter refusing the request itself (invalid argument, not supported) -> ``VcenterRequestError``
  (non-retryable: repeating the same call cannot help);
* any other vSphere fault -> ``TransientCloudError`` naming the fault, so an unknown fault is
  retried a bounded number of times and never read as success.

Programming errors (TypeError, AttributeError, ...) are not mapped: they must surface as bugs.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from pyVmomi import vim, vmodl

from contracts.errors import (
    ErrorType,
    FleetpatchError,
    InstanceRefused,
    TransientCloudError,
)


#: The type carried by retryable failures (vCenter unreachable, busy, failing). contracts has no
#: cloud-neutral "unavailable" type yet; callers branch on ``retryable``. Change it here only.
UNAVAILABLE = ErrorType.CLOUD_UNAVAILABLE


class VcenterAuthError(FleetpatchError):
    """vCenter refused fleetpatch's credentials, privileges or TLS trust. Not retried."""

    retryable = False

    def __init__(self, reason: str) -> None:
        super().__init__(ErrorType.CONFIGURATION_INVALID, reason)


class VcenterRequestError(FleetpatchError):
    """vCenter refused the request as invalid or unsupported. Not retried."""

    retryable = False

    def __init__(self, reason: str) -> None:
        super().__init__(ErrorType.CONFIGURATION_INVALID, reason)


_AUTH_FAULTS: tuple[type[BaseException], ...] = (
    vim.fault.InvalidLogin,
    vim.fault.NotAuthenticated,
    vim.fault.NoPermission,
    vmodl.fault.SecurityError,
)
_REQUEST_FAULTS: tuple[type[BaseException], ...] = (
    vmodl.fault.InvalidArgument,
    vmodl.fault.InvalidRequest,
    vmodl.fault.NotSupported,
    vmodl.fault.NotImplemented,
    vim.fault.InvalidName,
    vim.fault.DuplicateName,
)


def _fault_name(exc: BaseException) -> str:
    return getattr(exc, "_wsdlName", None) or type(exc).__name__


def _fault_message(exc: BaseException) -> str:
    msg = getattr(exc, "msg", None)
    return str(msg) if msg else _fault_name(exc)


def map_vsphere_error(exc: BaseException, what: str) -> FleetpatchError | None:
    """The fleetpatch error for an exception raised while doing ``what``; None: not ours to map."""
    if isinstance(exc, FleetpatchError):
        return exc
    if isinstance(exc, _AUTH_FAULTS):
        return VcenterAuthError(
            f"{what}: vCenter refused fleetpatch's login or privileges "
            f"({_fault_name(exc)}: {_fault_message(exc)})"
        )
    if isinstance(exc, vmodl.fault.ManagedObjectNotFound):
        return InstanceRefused(ErrorType.INSTANCE_NOT_FOUND, f"{what}: the object no longer exists")
    if isinstance(exc, _REQUEST_FAULTS):
        return VcenterRequestError(
            f"{what}: vCenter refused the request ({_fault_name(exc)}: {_fault_message(exc)})"
        )
    if isinstance(exc, vmodl.MethodFault):
        return TransientCloudError(
            UNAVAILABLE, f"{what}: vCenter fault {_fault_name(exc)}: {_fault_message(exc)}"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return VcenterAuthError(f"{what}: vCenter's TLS certificate is not trusted ({exc})")
    if isinstance(exc, OSError | http.client.HTTPException):
        # ConnectionRefusedError, TimeoutError, ConnectionResetError, socket.gaierror, other
        # ssl errors and broken HTTP exchanges: the network or vCenter may recover.
        return TransientCloudError(
            UNAVAILABLE, f"{what}: cannot reach vCenter ({type(exc).__name__}: {exc})"
        )
    return None


@contextmanager
def vsphere_errors(what: str) -> Iterator[None]:
    """Run a block of pyvmomi calls, re-raising what escapes as fleetpatch errors."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - mapped or re-raised unchanged just below
        mapped = map_vsphere_error(exc, what)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc
