"""vSphere client (pyvmomi): find VMs, read and write their fleetpatch token, custom attributes.

The connection is made by an injected factory with ``pyVim.connect.SmartConnect``'s signature, so
the same code talks to a production vCenter over https and to the local vcsim over plain http;
only the endpoint differs. Every pyvmomi call runs inside ``vsphere_errors`` (errors.py).

Properties are read with one PropertyCollector call per VM (or per inventory) rather than
pyvmomi's lazy attributes, which would cost one round trip per attribute.

When a key occurs more than once in ``config.extraConfig`` or ``customValue`` the last one wins:
a real vCenter replaces a value in place, while vcsim (govmomi 0.24) appends a new entry per
write; both agree on "the last entry is the current value".

Identity checks built on this client live in ``identity.py`` (``VcenterIdentityMixin``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from clouds.vmware.errors import UNAVAILABLE, VcenterRequestError, vsphere_errors
from clouds.vmware.identity import VcenterIdentityMixin
from clouds.vmware.token import GUESTINFO_TOKEN_KEY
from contracts.errors import ErrorType, FleetpatchError, InstanceRefused, TransientCloudError
from contracts.models import VmMetadata
from contracts.providers import Provider

if TYPE_CHECKING:
    from config.settings import VmwareSettings

_VM_PATHS = [
    "name",
    "config.instanceUuid",
    "config.uuid",
    "config.template",
    "config.extraConfig",
    "customValue",
    "runtime.powerState",
]


@dataclass(frozen=True)
class VcenterEndpoint:
    """Where and as whom to connect. ``url`` is the SDK URL, e.g. ``https://vc.example/sdk``."""

    url: str
    username: str
    password: str = field(repr=False)
    insecure: bool = False  # skip TLS verification: local vcsim over https only, never production
    timeout_seconds: float = 30.0

    @classmethod
    def from_settings(cls, vmware: VmwareSettings, vcenter_id: str) -> VcenterEndpoint | None:
        """The endpoint of a configured vCenter (credentials default to the global ones)."""
        vc = vmware.vcenters.get(vcenter_id)
        if vc is None:
            return None
        username = vc.username or vmware.username
        password = vc.password or vmware.password
        if not username or password is None:
            raise ValueError(f"vCenter {vcenter_id} has no username/password configured")
        return cls(
            url=vc.url,
            username=username,
            password=password.get_secret_value(),
            insecure=vc.insecure or vmware.insecure,
        )

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``SmartConnect``."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"vCenter URL must be http(s)://host[:port]/sdk, got {self.url!r}")
        return {
            "protocol": parts.scheme,
            "host": parts.hostname,
            "port": parts.port or (443 if parts.scheme == "https" else 80),
            "path": parts.path or "/sdk",
            "user": self.username,
            "pwd": self.password,
            "disableSslCertValidation": self.insecure,
            "httpConnectionTimeout": self.timeout_seconds,
        }


@dataclass(frozen=True)
class VmFacts:
    """One VM's properties as vCenter reported them in one read."""

    vm: Any  # vim.VirtualMachine managed object reference
    name: str
    instance_uuid: str
    bios_uuid: str
    power_state: str
    template: bool
    extra_config: dict[str, str]
    custom_values: dict[int, str]  # custom field key -> value


class VsphereClient(VcenterIdentityMixin):
    """A session with one vCenter; connects on first use. Use as a context manager or ``close()``."""

    def __init__(
        self,
        endpoint: VcenterEndpoint,
        *,
        connect: Callable[..., Any] = SmartConnect,
        disconnect: Callable[[Any], None] = Disconnect,
        task_timeout: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._endpoint = endpoint
        self._connect = connect
        self._disconnect = disconnect
        self._task_timeout = task_timeout
        self._sleep = sleep
        self._clock = clock
        self._si: Any = None
        self._content: Any = None

    def __enter__(self) -> VsphereClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        si, self._si, self._content = self._si, None, None
        if si is not None:
            try:
                self._disconnect(si)
            except Exception:  # noqa: BLE001 - logging out of a dead session is best effort
                pass

    @property
    def content(self) -> Any:
        """The ServiceContent, connecting (and logging in) on first use.

        One client is one vCenter session: make one per activity call or CLI run rather than
        keeping it for hours (vCenter ends idle sessions; a call then fails as VcenterAuthError).
        """
        if self._content is None:
            with vsphere_errors(f"connecting to vCenter {self._endpoint.url}"):
                self._si = self._connect(**self._endpoint.connect_kwargs())
                self._content = self._si.RetrieveContent()
        return self._content

    # --- finding VMs ---------------------------------------------------------------------

    def find_vm_by_instance_uuid(self, instance_uuid: str) -> Any | None:
        """The VM whose ``config.instanceUuid`` is this, or None."""
        content = self.content
        with vsphere_errors("searching the VM by instanceUuid"):
            return content.searchIndex.FindByUuid(
                datacenter=None, uuid=instance_uuid, vmSearch=True, instanceUuid=True
            )

    def get_vm_by_instance_uuid(self, instance_uuid: str) -> Any:
        """Like ``find_vm_by_instance_uuid`` but refuses with InstanceNotFound."""
        vm = self.find_vm_by_instance_uuid(instance_uuid)
        if vm is None:
            raise InstanceRefused(
                ErrorType.INSTANCE_NOT_FOUND, f"no VM with instanceUuid {instance_uuid} in vCenter"
            )
        return vm

    def find_vm_by_name(self, name: str) -> Any | None:
        """The VM with this inventory name (the first, if names repeat across folders), or None."""
        for facts in self.all_vms():
            if facts.name == name:
                return facts.vm
        return None

    def all_vms(self) -> list[VmFacts]:
        """Every VM in the inventory with its facts, read in one PropertyCollector call."""
        return self.vms_in_scope(None)

    def vms_in_scope(self, scope: str | None) -> list[VmFacts]:
        """The VMs inside a folder or resource pool (its inventory path, e.g. ``DC0/vm/acme`` or
        ``DC0/host/DC0_C0/Resources/acme``), at any depth; every VM when ``scope`` is None. A path
        that names no folder or pool refuses with ``ConfigurationInvalid`` (never "no VMs")."""
        content = self.content
        root = content.rootFolder if not scope else self._scope_object(scope)
        with vsphere_errors("listing VMs"):
            view = content.viewManager.CreateContainerView(root, [vim.VirtualMachine], True)
            try:
                traverse = vmodl.query.PropertyCollector.TraversalSpec(
                    name="view", path="view", skip=False, type=vim.view.ContainerView
                )
                start = vmodl.query.PropertyCollector.ObjectSpec(
                    obj=view, skip=True, selectSet=[traverse]
                )
                results = self._retrieve(content, [start])
            finally:
                view.DestroyView()
        return sorted((_facts(r) for r in results), key=lambda f: f.name)

    def _scope_object(self, scope: str) -> Any:
        with vsphere_errors(f"finding {scope}"):
            found = self.content.searchIndex.FindByInventoryPath(inventoryPath=scope.strip("/"))
        if not isinstance(found, vim.Folder | vim.ResourcePool):
            raise FleetpatchError(ErrorType.CONFIGURATION_INVALID, f"{scope!r} is not a folder or resource pool of this vCenter")
        return found

    def vm_facts(self, vm: Any) -> VmFacts:
        """One VM's facts in one round trip; InstanceNotFound if it disappeared."""
        content = self.content
        with vsphere_errors("reading VM properties"):
            results = self._retrieve(content, [vmodl.query.PropertyCollector.ObjectSpec(obj=vm)])
        if not results:
            raise InstanceRefused(ErrorType.INSTANCE_NOT_FOUND, "the VM no longer exists")
        return _facts(results[0])

    # --- guestinfo -----------------------------------------------------------------------

    def read_extra_config(self, vm: Any, key: str) -> str | None:
        """The current value of one ``config.extraConfig`` key, or None."""
        return self.vm_facts(vm).extra_config.get(key)

    def write_extra_config(self, vm: Any, key: str, value: str) -> None:
        """Set one ``config.extraConfig`` key with ReconfigVM_Task and wait for the task."""
        spec = vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key=key, value=value)])
        with vsphere_errors(f"reconfiguring the VM's {key}"):
            task = vm.ReconfigVM_Task(spec=spec)
        self._wait(task, f"reconfiguring the VM's {key}")

    def read_token(self, vm: Any) -> str | None:
        """The fleetpatch token the VM holds in ``guestinfo.fleetpatch.token``, or None."""
        return self.read_extra_config(vm, GUESTINFO_TOKEN_KEY)

    def write_token(self, vm: Any, token: str) -> None:
        """Store a token where the guest reads it (``vmware-rpctool "info-get guestinfo..."``)."""
        self.write_extra_config(vm, GUESTINFO_TOKEN_KEY, token)

    # --- custom attributes ---------------------------------------------------------------

    def custom_field_names(self) -> dict[int, str]:
        """Custom field key -> name, for definitions that apply to VMs (or to every type)."""
        content = self.content
        with vsphere_errors("reading custom attribute definitions"):
            fields = content.customFieldsManager.field or []
            return {
                f.key: f.name
                for f in fields
                if f.managedObjectType in (None, vim.VirtualMachine)
            }

    def _field_key(self, name: str) -> int | None:
        return next((k for k, n in self.custom_field_names().items() if n == name), None)

    def custom_attributes(self, vm: Any) -> dict[str, str]:
        """The VM's custom attributes by name (vSphere's "labels")."""
        return self._named(self.vm_facts(vm).custom_values, self.custom_field_names())

    def set_custom_attribute(self, vm: Any, name: str, value: str) -> None:
        """Set a custom attribute, creating its VM field definition when missing."""
        key = self._field_key(name)
        cfm = self.content.customFieldsManager
        if key is None:
            with vsphere_errors(f"creating custom attribute {name}"):
                try:
                    key = cfm.AddCustomFieldDef(name=name, moType=vim.VirtualMachine).key
                except vim.fault.DuplicateName:
                    # Created concurrently, or defined for another object type only.
                    key = self._field_key(name)
            if key is None:
                raise VcenterRequestError(
                    f"custom attribute {name} exists but does not apply to virtual machines"
                )
        with vsphere_errors(f"setting custom attribute {name}"):
            cfm.SetField(entity=vm, key=key, value=value)

    # --- metadata ------------------------------------------------------------------------

    def vm_metadata(self, vm: Any, vcenter_id: str) -> VmMetadata:
        """The VM as vCenter describes it; labels are its custom attributes.

        The BIOS UUID is not part of VmMetadata; ``vm_facts(vm).bios_uuid`` has it.
        """
        facts = self.vm_facts(vm)
        return VmMetadata(
            provider=Provider.VMWARE,
            cloud_account=vcenter_id,
            instance_id=facts.instance_uuid,
            name=facts.name,
            labels=self._named(facts.custom_values, self.custom_field_names()),
            state=facts.power_state,
        )

    def list_vm_metadata(self, vcenter_id: str, scope: str | None = None) -> list[VmMetadata]:
        """Every VM of the inventory (or of the folder or resource pool ``scope``; templates left
        out), as ``vm_metadata`` describes one."""
        names = self.custom_field_names()
        return [
            VmMetadata(
                provider=Provider.VMWARE,
                cloud_account=vcenter_id,
                instance_id=facts.instance_uuid,
                name=facts.name,
                labels=self._named(facts.custom_values, names),
                state=facts.power_state,
            )
            for facts in self.vms_in_scope(scope)
            if not facts.template and facts.instance_uuid
        ]

    # --- internals -----------------------------------------------------------------------

    @staticmethod
    def _named(values: dict[int, str], names: dict[int, str]) -> dict[str, str]:
        return {names[k]: v for k, v in values.items() if k in names}

    @staticmethod
    def _retrieve(content: Any, object_specs: list[Any]) -> list[Any]:
        prop = vmodl.query.PropertyCollector.PropertySpec(
            type=vim.VirtualMachine, pathSet=_VM_PATHS
        )
        spec = vmodl.query.PropertyCollector.FilterSpec(objectSet=object_specs, propSet=[prop])
        return list(content.propertyCollector.RetrieveContents([spec]) or [])

    def _wait(self, task: Any, what: str) -> None:
        """Poll a task until it ends; its fault is mapped like any other vSphere error."""
        deadline = self._clock() + self._task_timeout
        delay = 0.05
        while True:
            with vsphere_errors(what):
                info = task.info
                if info.state == vim.TaskInfo.State.success:
                    return
                if info.state == vim.TaskInfo.State.error:
                    raise info.error
            if self._clock() >= deadline:
                raise TransientCloudError(
                    UNAVAILABLE, f"{what}: task still {info.state} after {self._task_timeout:.0f}s"
                )
            self._sleep(delay)
            delay = min(delay * 2, 1.0)


def _facts(result: Any) -> VmFacts:
    props = {p.name: p.val for p in (result.propSet or [])}
    extra: dict[str, str] = {}
    for option in props.get("config.extraConfig") or []:
        if isinstance(option.value, str):
            extra[option.key] = option.value  # later entries win (see module docstring)
    custom: dict[int, str] = {}
    for value in props.get("customValue") or []:
        if isinstance(getattr(value, "value", None), str):
            custom[value.key] = value.value
    return VmFacts(
        vm=result.obj,
        name=str(props.get("name", "")),
        instance_uuid=str(props.get("config.instanceUuid") or ""),
        bios_uuid=str(props.get("config.uuid") or ""),
        power_state=str(props.get("runtime.powerState") or "unknown"),
        template=bool(props.get("config.template", False)),
        extra_config=extra,
        custom_values=custom,
    )
