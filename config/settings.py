"""Typed settings, read once when a process starts (never at import).

Every value comes from the environment with the prefix ``FLEETPATCH_``; nested groups use a
double underscore, e.g. ``FLEETPATCH_GCP__AUDIENCE`` or ``FLEETPATCH_AWS__ENDPOINT_URL``.
The production defaults need no file of their own: trust anchors ship with the package, and the
Temporal connection comes from Temporal's own environment configuration (``TEMPORAL_ADDRESS``,
``TEMPORAL_NAMESPACE``, ``TEMPORAL_PROFILE``, ``temporal.toml``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from config import secrets

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _duration(value: object) -> object:
    """Durations read from the environment: ``90`` (seconds), ``90s``, ``5m``, ``2h``, ``1d``, or ISO 8601."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def parse_duration(value: str) -> timedelta:
    """A duration as settings read it (``90``, ``5m``, ``30d``, ISO 8601); ValueError otherwise."""
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(Duration).validate_python(value)
    except ValidationError:
        raise ValueError(f"{value!r} is not a duration (e.g. 90s, 5m, 2h, 30d)") from None

TRUST_DIR = Path(__file__).resolve().parent.parent / "clouds"


class AwsSettings(BaseModel):
    """The management account: Organizations, STS, SSM Parameter Store, S3."""

    endpoint_url: str | None = None  # None: AWS's own endpoints
    region: str = "us-east-1"
    # Systems accounts: deterministic email per customer cloud account.
    account_email_domain: str = "systems.fleetpatch.example"
    account_name_prefix: str = "fleetpatch"
    #: The administrator role Organizations creates in a vended account: used only to create and
    #: update ``systems_role_name`` there, right after vending (or adopting) the account.
    access_role_name: str = "OrganizationAccountAccessRole"
    #: The least-privilege role (deploy/iam/systems-access-policy.json) every later call uses.
    systems_role_name: str = "FleetpatchSystemsAccess"
    # The role `fleetpatch session start` assumes in a systems account (with the operator's own
    # AWS credentials) to open a Session Manager session.
    operator_role_name: str = "OrganizationAccountAccessRole"
    # Cadence of the AWS-UpdateSSMAgent association in every systems account (a State Manager
    # schedule expression: rate(...) or cron(...)).
    agent_update_schedule: Annotated[str, Field(pattern=r"^(rate|cron)\(.+\)$")] = "rate(14 days)"
    # Where startup scripts download the SSM agent when a VM has none ({region}: ``region``), and
    # what its packages must be signed by (clients/startup/agent_trust.py, README "Agent install
    # verification"): Linux .deb/.rpm by an OpenPGP key in agent_signing_key_file (None: AWS's, in
    # clouds/aws/trust/) with a pinned fingerprint; the Windows installer by Authenticode.
    agent_download_url: str = "https://s3.{region}.amazonaws.com/amazon-ssm-{region}/latest"
    agent_signing_key_file: Path | None = None
    agent_signing_fingerprints: list[str] = Field(default=["1C5B395CBE5E74E2F1CA21592784DBF388D19D46"], min_length=1)
    agent_windows_signer: str = "Amazon.com Services LLC"  # the signer certificate's subject name
    agent_windows_thumbprints: list[str] = Field(default_factory=list)  # when any: its SHA-1 must be one
    activation_expiry: Duration = timedelta(hours=24)
    agent_online_timeout: Duration = timedelta(minutes=30)
    links_parameter_prefix: str = "/fleetpatch/links"


class GcpSettings(BaseModel):
    audience: str = "https://fleetpatch.example/v1/registrations"
    jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    jwks_file: Path | None = None  # a local JWKS file instead of the URL
    max_token_age: Duration = timedelta(minutes=10)
    compute_endpoint: str | None = None  # None: Google's own
    # "default": Application Default Credentials; "anonymous": none (the local GCP cloud only).
    compute_credentials: Literal["default", "anonymous"] = "default"
    # An unknown kid refreshes the JWKS at most this often (no refresh storm from forged kids).
    jwks_min_refresh_interval: Duration = timedelta(seconds=30)


class AzureSettings(BaseModel):
    roots_file: Path | None = None  # None: the roots shipped with fleetpatch
    intermediates_file: Path | None = None
    allowed_san_domains: list[str] = Field(default_factory=lambda: ["metadata.azure.com"])
    max_document_age: Duration = timedelta(minutes=10)
    arm_endpoint: str | None = None  # None: https://management.azure.com
    ca_bundle: Path | None = None  # a TLS CA for a private ARM endpoint
    nonce_ttl: Duration = timedelta(minutes=5)


class Ec2Settings(BaseModel):
    certs_dir: Path | None = None  # None: AWS's per-region certificates shipped with fleetpatch
    # Which signed forms are accepted: rsa2048 (PKCS#7), pkcs7 (DSA), signature (detached RSA).
    accepted_forms: list[Literal["rsa2048", "pkcs7", "signature"]] = Field(
        default_factory=lambda: ["rsa2048"]
    )
    max_document_age: Duration | None = None  # None: any pendingTime in the past
    # EC2 and STS API endpoint; None: FLEETPATCH_AWS__ENDPOINT_URL, and if that is unset too,
    # AWS's own regional endpoints. Locally it is the moto server.
    endpoint_url: str | None = None
    role_session_name: str = "fleetpatch-ec2"  # on the customer's cross-account role
    # Regions reconcile lists instances in; empty: FLEETPATCH_AWS__REGION only.
    regions: list[str] = Field(default_factory=list)


class VmwareSettings(BaseModel):
    class Vcenter(BaseModel):
        """One vCenter fleetpatch reaches, keyed by fleetpatch's vCenter id in ``vcenters``.

        Set as JSON, e.g. ``FLEETPATCH_VMWARE__VCENTERS='{"vc-1": {"url": "https://vc/sdk"}}'``.
        """

        url: str  # the SDK URL, https://HOST/sdk (local vcsim: http://127.0.0.1:PORT/sdk)
        username: str | None = None  # None: VmwareSettings.username
        password: SecretStr | None = None  # None: VmwareSettings.password
        signing_key_file: Path | None = None  # PEM private key that signs this vCenter's tokens
        insecure: bool = False  # skip TLS verification; local only, never in production
        customer: str | None = None  # default for `fleetpatch vcenter issue-tokens --customer`

    vcenters: dict[str, Vcenter] = Field(default_factory=dict)
    token_ttl: Duration = timedelta(hours=1)
    # The token schedule (one per vCenter link): how often it runs, and how long before a
    # token's expiry it is rotated.
    token_interval: Duration = timedelta(minutes=5)
    token_renew_before: Duration = timedelta(minutes=20)
    # vCenter connection details come from the tenant link; credentials from here.
    username: str | None = None
    password: SecretStr | None = None
    insecure: bool = False  # local vcsim only; never in production


class LabelSettings(BaseModel):
    patching: str = "rackspace-addon-patching"
    patch_group: str = "rackspace-addon-patching-patchgroup"


def _strong(setting: str, value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        secrets.check(setting, value.get_secret_value())
    return value


class ApiSettings(BaseModel):
    model_config = ConfigDict(hide_input_in_errors=True)  # never echo a refused secret

    host: str = "127.0.0.1"
    port: int = 8700
    public_url: str | None = None  # how VMs reach the API (baked into startup scripts); None: as requested
    admin_token: SecretStr | None = None
    challenge_key: SecretStr | None = None  # HMAC key for Azure nonces
    max_body_bytes: int = 64 * 1024
    registration_wait: Duration = timedelta(seconds=20)  # budget of POST /v1/registrations
    admin_budget: Duration = timedelta(seconds=10)  # admin mutations: the result, or 202 + Location
    # The Temporal Web UI, for links from an instance's audit chain to its enrollment; None: no link.
    temporal_ui_url: str | None = None
    temporal_namespace: str = "default"
    # Unauthenticated routes: calls per rate_window per source address, and per verified instance
    # (registrations) or enrollment id (polls); 0 turns a limit off. See clients/api/rate_limit.py.
    rate_per_address: int = Field(default=120, ge=0)
    rate_per_instance: int = Field(default=12, ge=0)
    rate_window: Duration = timedelta(minutes=1)
    # vCenter token keys learnt from the links (clients/api/vcenter_keys.py): re-read when older
    # than the ttl; an unknown vCenter re-reads at most once per min_refresh.
    vcenter_keys_ttl: Duration = timedelta(minutes=5)
    vcenter_keys_min_refresh: Duration = timedelta(seconds=15)

    @field_validator("admin_token", "challenge_key")
    @classmethod
    def _secrets_are_strong(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        return _strong(f"FLEETPATCH_API__{(info.field_name or '').upper()}", value)


class CodecSettings(BaseModel):
    """The payload codec that encrypts everything crossing Temporal (``config/codec.py``).

    ``keys``: comma-separated; the first encrypts, all decrypt (rotation: put the new key first,
    drop an old one when no history needs it). ``keys_file``: the same, one key per line (a
    mounted secret); its keys follow those of ``keys``. No key: payloads are not encrypted.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    keys: SecretStr | None = None
    keys_file: Path | None = None
    #: browser origins of the Temporal UIs that may call the codec routes (CORS)
    ui_origins: list[str] = Field(default_factory=list)

    @field_validator("keys")
    @classmethod
    def _keys_are_strong(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            for key in value.get_secret_value().split(","):
                secrets.check("FLEETPATCH_CODEC__KEYS", key)
        return value

    def ring(self) -> list[str]:
        ring = self.keys.get_secret_value().split(",") if self.keys else []
        if self.keys_file is not None:
            for line in self.keys_file.read_text().splitlines():
                if line.strip():
                    ring.append(secrets.check(f"a key in {self.keys_file}", line.strip()))
        return ring


class PatchingSettings(BaseModel):
    """Patch windows: where the patch train and reports live, how fast SSM is called, run shape."""

    # S3 bucket in each systems account for the patch train, ring records and reports.
    bucket: str = "fleetpatch-patching-{account_id}-{region}"
    # Calls per second per systems account and aws worker (SSM throttles per account and API).
    send_per_second: float = 2.0  # SendCommand, CancelCommand
    read_per_second: float = 10.0  # ListCommands, ListCommandInvocations, Describe*
    # The shape of a run (passed to each PatchWindow through its schedule).
    batch_size: int = 500
    max_parallel_batches: int = 4
    poll_interval: Duration = timedelta(seconds=30)
    poll_hold: Duration = timedelta(minutes=5)


class ReconcileSettings(BaseModel):
    """Reconcile: one schedule per linked cloud account (``reconcile/{provider}/{account}``)."""

    interval: Duration = timedelta(hours=1)


class ComplianceSettings(BaseModel):
    """ComplianceSync: how often the ``compliance-sync`` schedule fills the estate store from SSM.

    The orchestrator worker creates (or updates) the schedule when it starts, unless
    ``schedule`` is false (``FLEETPATCH_COMPLIANCE__SCHEDULE=false``).
    """

    interval: Duration = timedelta(minutes=15)
    max_concurrent_accounts: int = Field(default=8, ge=1, le=100)
    schedule: bool = True


class DatabaseSettings(BaseModel):
    """The estate store. None: the SQLite file ``estate.db`` in ``state_dir`` (see ``Settings``).

    PostgreSQL: ``postgresql+psycopg://USER:PASSWORD@HOST:5432/fleetpatch``.
    """

    url: str | None = None
    echo: bool = False
    pool_size: int = 5


class TelemetrySettings(BaseModel):
    """Metrics and traces (config/telemetry.py). Everything is off unless set."""

    metrics_bind: str | None = None  # HOST:PORT of a worker's Prometheus endpoint, e.g. 0.0.0.0:9464
    otlp_endpoint: str | None = None  # OTLP/HTTP collector, e.g. http://otel-collector:4318
    service_name: str | None = None  # the traces' service.name; None: fleetpatch-<role>


class WorkerTuning(BaseModel):
    """Temporal worker options of one role; None keeps the SDK's (or the role's) default."""

    max_concurrent_workflow_tasks: int | None = Field(default=None, ge=1)
    max_concurrent_activities: int | None = Field(default=None, ge=1)
    workflow_task_polls: int | None = Field(default=None, ge=1)  # max_concurrent_workflow_task_polls
    activity_task_polls: int | None = Field(default=None, ge=1)  # max_concurrent_activity_task_polls
    max_cached_workflows: int | None = Field(default=None, ge=0)
    sync_threads: int | None = Field(default=None, ge=1)  # thread pool of synchronous activities


#: Workflow runs the orchestrator keeps in memory between their tasks (the SDK's default is 1,000).
#: Every open enrollment waiting for its agent is such a run (~0.27 MB each in the sandbox), so the
#: SDK's default lets 1,000 of them take ~275 MB; an evicted run replays its history (an open
#: enrollment: ~70 events, tens of ms) on its next task, which for a waiting enrollment is the one
#: when its agent comes online. Least recently used runs go first, so runs that are progressing stay.
ORCHESTRATOR_STICKY_CACHE = 250


class OrchestratorTuning(WorkerTuning):
    """The orchestrator's options: a bounded sticky cache by default (see ORCHESTRATOR_STICKY_CACHE)."""

    max_cached_workflows: int | None = Field(default=ORCHESTRATOR_STICKY_CACHE, ge=0)


class WorkerSettings(BaseModel):
    """Per role, e.g. ``FLEETPATCH_WORKER__ORCHESTRATOR__WORKFLOW_TASK_POLLS=4``."""

    orchestrator: OrchestratorTuning = OrchestratorTuning()
    aws: WorkerTuning = WorkerTuning()
    gcp: WorkerTuning = WorkerTuning()
    azure: WorkerTuning = WorkerTuning()
    vmware: WorkerTuning = WorkerTuning()
    ec2: WorkerTuning = WorkerTuning()


class LocalSettings(BaseModel):
    """Ports and behaviour of the embedded default (``fleetpatch up``)."""

    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    aws_port: int = 8701
    gcp_port: int = 8702
    azure_imds_port: int = 8703
    azure_arm_port: int = 8704
    ec2_imds_port: int = 8705
    vcenter_port: int = 8706
    vcenter_guest_port: int = 8707  # the guest-tools stand-in simulated vCenter VMs read tokens from
    fleet_port: int = 8708  # the simulated fleet (localclouds.fleet): `fleetpatch simulate` talks to it
    #: Prometheus endpoints of the workers: the first port of a block, one port per role in
    #: WorkerRole order; ``worker_metrics_ports`` ({role: port}) overrides single roles.
    worker_metrics_port: int = 8710
    worker_metrics_ports: dict[str, int] = Field(default_factory=dict)
    create_account_delay: Duration = timedelta(seconds=3)
    #: how many simulated VMs run their startup script at once (real VMs all boot at once)
    fleet_boot_concurrency: int = Field(default=6, ge=1, le=200)
    #: PRAGMA=VALUE statements of the dev server's SQLite file: WAL with synchronous=NORMAL
    #: survives any process crash (not a power loss) with far fewer fsyncs than the defaults.
    temporal_sqlite_pragmas: list[str] = Field(default_factory=lambda: ["journal_mode=wal", "synchronous=normal"])
    #: Dynamic configuration of the dev server (``--dynamic-config-value KEY=JSON``).
    temporal_dynamic_config: dict[str, Any] = Field(default_factory=dict)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLEETPATCH_", env_nested_delimiter="__", extra="ignore", hide_input_in_errors=True
    )

    state_dir: Path = Path(".fleetpatch")
    #: Seals activation codes on their way through Temporal history (aws worker and API share it).
    sealing_key: SecretStr | None = None
    task_queue_prefix: str = ""
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    aws: AwsSettings = AwsSettings()
    gcp: GcpSettings = GcpSettings()
    azure: AzureSettings = AzureSettings()
    ec2: Ec2Settings = Ec2Settings()
    vmware: VmwareSettings = VmwareSettings()
    labels: LabelSettings = LabelSettings()
    api: ApiSettings = ApiSettings()
    patching: PatchingSettings = PatchingSettings()
    codec: CodecSettings = CodecSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    reconcile: ReconcileSettings = ReconcileSettings()
    local: LocalSettings = LocalSettings()
    database: DatabaseSettings = DatabaseSettings()
    compliance: ComplianceSettings = ComplianceSettings()
    worker: WorkerSettings = WorkerSettings()

    @field_validator("sealing_key")
    @classmethod
    def _sealing_key_is_strong(cls, value: SecretStr | None) -> SecretStr | None:
        return _strong("FLEETPATCH_SEALING_KEY", value)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):  # type: ignore[no-untyped-def]
        """Environment first, then ``FLEETPATCH_..._FILE`` variables naming a file that holds the value."""
        from config.secret_files import SecretFileSource

        return init_settings, env_settings, SecretFileSource(settings_cls), dotenv_settings, file_secret_settings

    @property
    def local_json(self) -> Path:
        return self.state_dir / "local.json"

    @classmethod
    def load(cls) -> Settings:
        """The settings of a process that is starting: a refused value stops it with the
        setting's name and why (never the value), not a traceback."""
        try:
            return cls()
        except ValidationError as err:
            reasons = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in err.errors()
            )
            raise SystemExit(f"fleetpatch cannot start, refused settings: {reasons}") from None

    @property
    def database_url(self) -> str:
        """The estate store's URL: ``FLEETPATCH_DATABASE__URL``, else ``STATE_DIR/estate.db`` (SQLite)."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.state_dir / 'estate.db').resolve()}"
