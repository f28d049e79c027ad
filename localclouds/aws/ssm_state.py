"""In-memory SSM state, one ``RegionState`` per (account, region), behind one lock.

moto's server is threaded; every SSM/ec2messages handler runs while holding ``SsmState.lock``,
so the records below need no locking of their own. The global indexes exist because two agent
calls carry no account: RegisterManagedInstance (unsigned, keyed by the activation id) and
RequestManagedInstanceRoleToken (signed with the instance key, keyed by the instance id).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

Clock = Callable[[], datetime]


@dataclass
class Activation:
    activation_id: str
    code: str
    iam_role: str
    registration_limit: int
    expiration: datetime
    created: datetime
    description: str | None = None
    default_instance_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    registrations: int = 0
    deleted: bool = False


@dataclass
class ManagedInstance:
    """A hybrid managed instance (``mi-``, registered with an activation) or an EC2 instance
    (``i-``) whose agent pinged with its instance credentials (no activation, no key)."""

    instance_id: str
    activation_id: str
    iam_role: str
    registered: datetime
    public_key: rsa.RSAPublicKey | None
    fingerprint: str
    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    last_ping: datetime | None = None
    info: dict[str, Any] = field(default_factory=dict)  # AgentVersion, PlatformName, ...
    deregistered: bool = False
    last_inventory: datetime | None = None
    resource_type: str = "ManagedInstance"  # or "EC2Instance"


@dataclass
class Invocation:
    command_id: str
    instance_id: str
    instance_name: str
    status: str = "Pending"
    details: str = "Pending"
    dispatched: bool = False
    delivered_at: datetime | None = None  # last handed to the agent by GetMessages
    started: datetime | None = None  # acknowledged by the agent
    finished: datetime | None = None
    response_code: int = -1
    plugins: list[dict[str, Any]] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    cancel_requested: bool = False

    @property
    def message_id(self) -> str:
        return f"aws.ssm.{self.command_id}.{self.instance_id}"

    @property
    def terminal(self) -> bool:
        return self.status in ("Success", "Failed", "TimedOut", "Cancelled")


@dataclass
class Command:
    command_id: str
    document_name: str
    document_content: dict[str, Any]
    parameters: dict[str, list[str]]
    requested: datetime
    timeout: timedelta  # delivery timeout (TimeoutSeconds)
    execution_timeout: timedelta
    max_concurrency: str
    max_errors: str
    concurrency_limit: int
    error_limit: int
    instance_ids: list[str]
    targets: list[dict[str, Any]]
    comment: str = ""
    output_bucket: str | None = None
    output_prefix: str | None = None
    service_role: str | None = None
    invocations: dict[str, Invocation] = field(default_factory=dict)
    status: str = "Pending"
    details: str = "Pending"
    cancelled: bool = False


@dataclass
class Message:
    """An ec2messages message waiting for an agent."""

    message_id: str
    destination: str
    topic: str
    payload: str
    created: datetime
    visible_after: datetime
    acknowledged: bool = False
    command_id: str | None = None  # set for sendCommand messages


@dataclass
class Baseline:
    baseline_id: str
    name: str
    operating_system: str
    created: datetime
    modified: datetime
    fields: dict[str, Any] = field(default_factory=dict)  # the API members we echo back
    aws_owned: bool = False
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Association:
    association_id: str
    name: str
    targets: list[dict[str, Any]]
    created: datetime
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class RegionState:
    account_id: str
    region: str
    activations: dict[str, Activation] = field(default_factory=dict)
    instances: dict[str, ManagedInstance] = field(default_factory=dict)
    commands: dict[str, Command] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    baselines: dict[str, Baseline] = field(default_factory=dict)
    patch_groups: dict[tuple[str, str], str] = field(default_factory=dict)  # (group, os) -> id
    default_baselines: dict[str, str] = field(default_factory=dict)  # os -> id (overrides)
    associations: dict[str, Association] = field(default_factory=dict)
    patch_states: dict[str, dict[str, Any]] = field(default_factory=dict)  # instance -> state
    inventory: dict[str, dict[str, Any]] = field(default_factory=dict)  # instance -> type -> item
    compliance: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)
    # (instance, association id) -> the agent's last UpdateInstanceAssociationStatus result
    association_runs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> document


@dataclass(frozen=True)
class Location:
    account_id: str
    region: str


class SsmState:
    """All SSM state of the emulator plus the cross-account indexes agents need."""

    RUNTIME_FIELDS = ("lock", "clock", "ping_timeout")  # not saved (persistence.py)

    def __init__(self, clock: Clock, ping_timeout: timedelta) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.ping_timeout = ping_timeout
        self._regions: dict[Location, RegionState] = {}
        self.activation_index: dict[str, Location] = {}
        self.instance_index: dict[str, Location] = {}
        self.instance_keys: dict[str, str] = {}  # temporary access key -> managed instance id
        self.snapshot_index: dict[str, Location] = {}  # download token -> location

    def region(self, account_id: str, region: str) -> RegionState:
        location = Location(account_id, region)
        state = self._regions.get(location)
        if state is None:
            state = self._regions[location] = RegionState(account_id, region)
        return state

    def locate(self, location: Location) -> RegionState:
        return self.region(location.account_id, location.region)

    def ping_status(self, instance: ManagedInstance, now: datetime) -> str:
        if instance.last_ping is None or now - instance.last_ping > self.ping_timeout:
            return "ConnectionLost"
        return "Online"
