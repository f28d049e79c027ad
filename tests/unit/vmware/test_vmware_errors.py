"""pyvmomi and network exceptions map to fleetpatch errors in one place (clouds/vmware/errors.py)."""

from __future__ import annotations

import http.client
import socket
import ssl

import pytest
from pyVmomi import vim, vmodl

from clouds.vmware.errors import VcenterAuthError, VcenterRequestError, map_vsphere_error, vsphere_errors
from clouds.vmware.vsphere import VcenterEndpoint, VsphereClient
from contracts.errors import ErrorType, InstanceRefused, TransientCloudError


@pytest.mark.parametrize(
    ("exc", "expected", "retryable"),
    [
        (vim.fault.InvalidLogin(msg="Login failure"), VcenterAuthError, False),
        (vim.fault.NotAuthenticated(), VcenterAuthError, False),
        (vim.fault.NoPermission(privilegeId="VirtualMachine.Config.AdvancedConfig"), VcenterAuthError, False),
        (ssl.SSLCertVerificationError("certificate verify failed"), VcenterAuthError, False),
        (vmodl.fault.ManagedObjectNotFound(), InstanceRefused, False),
        (vmodl.fault.InvalidArgument(invalidProperty="key"), VcenterRequestError, False),
        (vmodl.fault.NotSupported(), VcenterRequestError, False),
        (ConnectionRefusedError(111, "Connection refused"), TransientCloudError, True),
        (TimeoutError("timed out"), TransientCloudError, True),
        (socket.gaierror(-2, "Name or service not known"), TransientCloudError, True),
        (http.client.RemoteDisconnected("closed"), TransientCloudError, True),
        (vmodl.fault.SystemError(reason="busy"), TransientCloudError, True),
        (vim.fault.TaskInProgress(), TransientCloudError, True),
    ],
)
def test_mapping(exc: BaseException, expected: type, retryable: bool) -> None:
    mapped = map_vsphere_error(exc, "doing x")
    assert isinstance(mapped, expected)
    assert mapped.retryable is retryable
    assert mapped.reason.startswith("doing x")


def test_instance_not_found_type() -> None:
    mapped = map_vsphere_error(vmodl.fault.ManagedObjectNotFound(), "reading")
    assert mapped is not None and mapped.type == ErrorType.INSTANCE_NOT_FOUND


def test_programming_errors_pass_through_unchanged() -> None:
    assert map_vsphere_error(TypeError("bug"), "x") is None
    with pytest.raises(TypeError, match="bug"):
        with vsphere_errors("x"):
            raise TypeError("bug")


def test_context_manager_chains_the_original() -> None:
    with pytest.raises(TransientCloudError) as caught:
        with vsphere_errors("listing VMs"):
            raise ConnectionResetError(104, "reset")
    assert isinstance(caught.value.__cause__, ConnectionResetError)


def test_connecting_to_a_closed_port_is_transient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    endpoint = VcenterEndpoint(url=f"http://127.0.0.1:{port}/sdk", username="u", password="p",
                               timeout_seconds=5)
    with VsphereClient(endpoint) as client, pytest.raises(TransientCloudError):
        client.all_vms()


def test_endpoint_rejects_other_schemes_and_keeps_the_password_out_of_repr() -> None:
    with pytest.raises(ValueError):
        VcenterEndpoint(url="ftp://vc/sdk", username="u", password="p").connect_kwargs()
    endpoint = VcenterEndpoint(url="https://vc.example", username="u", password="s3cret")
    assert "s3cret" not in repr(endpoint)
    kwargs = endpoint.connect_kwargs()
    assert (kwargs["protocol"], kwargs["host"], kwargs["port"], kwargs["path"]) == ("https", "vc.example", 443, "/sdk")
    assert kwargs["disableSslCertValidation"] is False


def test_task_timeout_is_transient() -> None:
    """A task that never ends becomes a TransientCloudError after task_timeout (fake clock)."""

    class Info:
        state = vim.TaskInfo.State.running

    class Task:
        info = Info()

    ticks = iter(range(0, 1000, 10))
    client = VsphereClient(VcenterEndpoint(url="http://127.0.0.1:1/sdk", username="u", password="p"),
                           task_timeout=30, sleep=lambda _: None, clock=lambda: float(next(ticks)))
    with pytest.raises(TransientCloudError, match="still running"):
        client._wait(Task(), "reconfiguring")


def test_task_error_is_mapped() -> None:
    class Info:
        state = vim.TaskInfo.State.error
        error = vim.fault.NoPermission(privilegeId="VirtualMachine.Config.AdvancedConfig")

    class Task:
        info = Info()

    client = VsphereClient(VcenterEndpoint(url="http://127.0.0.1:1/sdk", username="u", password="p"))
    with pytest.raises(VcenterAuthError):
        client._wait(Task(), "reconfiguring")
