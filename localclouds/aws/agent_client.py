"""A small SSM agent client, speaking the real agent's wire protocol through botocore.

Three botocore clients cover every agent-side call:
- ``ssm-agent`` (model shipped under ``models/``): RegisterManagedInstance (unsigned),
  RequestManagedInstanceRoleToken (signed the way the agent signs it: SigV4 canonical request,
  RSA-PSS/SHA-256 signature with the instance key, the instance id as access key id),
  UpdateInstanceInformation, ListInstanceAssociations and UpdateInstanceAssociationStatus (SigV4
  with the role credentials). These are not in boto3's model.
- ``ec2messages`` (model shipped under ``models/``): GetMessages, AcknowledgeMessage, SendReply,
  FailMessage, DeleteMessage.
- ``ssm`` (boto3's own model): PutInventory, PutComplianceItems,
  GetDeployablePatchSnapshotForInstance.
Errors surface as botocore ``ClientError`` subclasses with the service's error codes, and
throttling is retried by botocore's own retry handler. Every agent of a process shares one client
per service (and its connection pool); each call is signed with the calling agent's own key or
role credentials, so a process can hold thousands of agents.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.session
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.config import Config
from botocore.credentials import Credentials
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MODELS_DIR = Path(__file__).resolve().parent / "models"
KEY_TYPE = "Rsa"


@dataclass(frozen=True)
class InstanceKey:
    """The instance's RSA key pair: private key PKCS#1 DER base64, public key PKIX DER base64."""

    private_key: str
    public_key: str

    @classmethod
    def generate(cls) -> InstanceKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private = key.private_bytes(serialization.Encoding.DER,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        return cls(base64.b64encode(private).decode(), base64.b64encode(public).decode())

    @functools.cached_property
    def _loaded(self) -> rsa.RSAPrivateKey:
        """The private key, parsed once (parsing checks the key, ~90 ms: not once per signature)."""
        key = serialization.load_der_private_key(base64.b64decode(self.private_key), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    def sign(self, message: str) -> str:
        signature = self._loaded.sign(message.encode(),
                             padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                             hashes.SHA256())
        return base64.b64encode(signature).decode()

    def __repr__(self) -> str:  # never print the private key
        return "InstanceKey(<redacted>)"


@dataclass(frozen=True)
class Registration:
    """What the agent keeps in its vault after registering."""

    instance_id: str
    region: str
    fingerprint: str
    key: InstanceKey


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime

    def __repr__(self) -> str:
        return f"RoleCredentials({self.access_key_id}, expires {self.expiration.isoformat()})"


class _RsaSigV4(SigV4Auth):
    """SigV4 with the HMAC replaced by an RSA-PSS signature, as the SSM agent's rsaauth does."""

    def __init__(self, instance_id: str, key: InstanceKey, service: str, region: str) -> None:
        super().__init__(Credentials(instance_id, "unused"), service, region)
        self._key = key

    def signature(self, string_to_sign: str, request: Any) -> str:
        return self._key.sign(string_to_sign)


_SESSION_LOCK = threading.Lock()
_CALL = threading.local()  # how the call on this thread signs: set by _Signed, read at before-sign


@functools.cache
def _session() -> botocore.session.Session:
    """One botocore session that also knows our two models (shared: loading models is slow)."""
    session = botocore.session.get_session()
    loader = session.get_component("data_loader")
    loader.search_paths.insert(0, str(MODELS_DIR))
    return session


def _sign_for_caller(request: Any, signing_name: str, region_name: str, **_: Any) -> None:
    """Sign with whatever the calling agent set for this call (nothing: the call stays unsigned)."""
    signer = getattr(_CALL, "signer", None)
    if signer is not None:
        signer(signing_name, region_name).add_auth(request)


_SHARED: dict[tuple[str, str | None, str], Any] = {}


def _shared_client(service: str, endpoint_url: str | None, region: str) -> Any:
    """One unsigned client per (service, endpoint, region) for every agent of the process; each
    call is signed by its own agent (``_Signed``). Agents differ only in their credentials, so
    thousands of them need not hold thousands of clients and connection pools."""
    key = (service, endpoint_url, region)
    with _SESSION_LOCK:  # botocore sessions are not safe for concurrent client creation
        client = _SHARED.get(key)
        if client is None:
            config = Config(retries={"mode": "standard", "max_attempts": 5}, signature_version=UNSIGNED,
                            max_pool_connections=64)
            client = _session().create_client(service, region_name=region, endpoint_url=endpoint_url, config=config)
            client.meta.events.register("before-sign", _sign_for_caller)
            _SHARED[key] = client
        return client


class _Signed:
    """A shared client's operations, each call signed with one agent's own signer."""

    def __init__(self, client: Any, signer: Any) -> None:
        self._client, self._signer = client, signer

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            _CALL.signer = self._signer
            try:
                return attribute(*args, **kwargs)
            finally:
                _CALL.signer = None

        return call


class AgentClient:
    """The unauthenticated start of an agent's life: registration."""

    def __init__(self, endpoint_url: str | None, region: str):
        self.endpoint_url = endpoint_url
        self.region = region

    def _client(self, service: str, signer: Any = None) -> Any:
        return _Signed(_shared_client(service, self.endpoint_url, self.region), signer)

    def register(self, activation_id: str, activation_code: str,
                 fingerprint: str | None = None, key: InstanceKey | None = None) -> Registration:
        """RegisterManagedInstance -> the new mi- id, plus the key and fingerprint to keep."""
        key = key or InstanceKey.generate()
        fingerprint = fingerprint or str(uuid.uuid4())
        answer = self._client("ssm-agent").register_managed_instance(
            ActivationCode=activation_code, ActivationId=activation_id,
            PublicKey=key.public_key, PublicKeyType=KEY_TYPE, Fingerprint=fingerprint)
        return Registration(answer["InstanceId"], self.region, fingerprint, key)

    def request_role_token(self, registration: Registration) -> RoleCredentials:
        """RequestManagedInstanceRoleToken, signed with the instance key."""
        client = self._client("ssm-agent", lambda _name, _region: _RsaSigV4(
            registration.instance_id, registration.key, "ssm", registration.region))
        answer = client.request_managed_instance_role_token(Fingerprint=registration.fingerprint)
        return RoleCredentials(answer["AccessKeyId"], answer["SecretAccessKey"],
                               answer["SessionToken"], answer["TokenExpirationDate"])

    def session(self, registration: Registration) -> AgentSession:
        return AgentSession(self, registration, self.request_role_token(registration))


class AgentSession:
    """A registered agent holding role credentials: ping, poll, reply, report."""

    def __init__(self, client: AgentClient, registration: Registration,
                 credentials: RoleCredentials) -> None:
        self.registration = registration
        self.credentials = credentials
        frozen = Credentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token)

        def sigv4(signing_name: str, region: str) -> SigV4Auth:
            return SigV4Auth(frozen, signing_name, region)

        self.ssm_agent = client._client("ssm-agent", sigv4)
        self.messages = client._client("ec2messages", sigv4)
        self.ssm = client._client("ssm", sigv4)

    @property
    def instance_id(self) -> str:
        return self.registration.instance_id

    def update_instance_information(self, **fields: str) -> None:
        """The health ping (AgentVersion, PlatformName/Type/Version, ComputerName, IPAddress)."""
        self.ssm_agent.update_instance_information(InstanceId=self.instance_id, **fields)

    def get_messages(self, visibility_timeout: int = 30) -> list[dict[str, Any]]:
        answer = self.messages.get_messages(Destination=self.instance_id,
                                            MessagesRequestId=str(uuid.uuid4()),
                                            VisibilityTimeoutInSeconds=visibility_timeout)
        return answer.get("Messages", [])

    def acknowledge_message(self, message_id: str) -> None:
        self.messages.acknowledge_message(MessageId=message_id)

    def send_reply(self, message_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self.messages.send_reply(MessageId=message_id, ReplyId=str(uuid.uuid4()),
                                        Payload=json.dumps(payload))

    def fail_message(self, message_id: str, failure_type: str = "InternalHandlerException") -> None:
        self.messages.fail_message(MessageId=message_id, FailureType=failure_type)

    def delete_message(self, message_id: str) -> None:
        self.messages.delete_message(MessageId=message_id)

    def put_inventory(self, items: list[dict[str, Any]]) -> None:
        self.ssm.put_inventory(InstanceId=self.instance_id, Items=items)

    def put_compliance_items(self, compliance_type: str, items: list[dict[str, Any]],
                             execution_time: datetime, upload_type: str = "COMPLETE") -> None:
        self.ssm.put_compliance_items(
            ResourceId=self.instance_id, ResourceType="ManagedInstance",
            ComplianceType=compliance_type, Items=items, UploadType=upload_type,
            ExecutionSummary={"ExecutionTime": execution_time, "ExecutionType": "Command"})

    def list_instance_associations(self) -> list[dict[str, Any]]:
        """The associations this instance must apply (every page)."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.ssm_agent.list_instance_associations(
                InstanceId=self.instance_id, **({"NextToken": token} if token else {}))
            found += page.get("Associations", [])
            token = page.get("NextToken")
            if not token:
                return found

    def update_instance_association_status(self, association_id: str, status: str,
                                           executed: datetime, summary: str = "",
                                           error_code: str = "") -> None:
        result: dict[str, Any] = {"Status": status, "DetailedStatus": status,
                                  "ExecutionDate": executed, "ExecutionSummary": summary}
        if error_code:
            result["ErrorCode"] = error_code
        self.ssm_agent.update_instance_association_status(
            AssociationId=association_id, InstanceId=self.instance_id, ExecutionResult=result)

    def get_deployable_patch_snapshot(self, snapshot_id: str) -> dict[str, Any]:
        """The answer of GetDeployablePatchSnapshotForInstance plus the downloaded snapshot."""
        answer = self.ssm.get_deployable_patch_snapshot_for_instance(
            InstanceId=self.instance_id, SnapshotId=snapshot_id)
        with urllib.request.urlopen(answer["SnapshotDownloadUrl"], timeout=30) as response:
            snapshot = json.loads(response.read())
        return {"Product": answer.get("Product"), "SnapshotId": answer["SnapshotId"],
                "Snapshot": snapshot}


def reply_payload(document_status: str, plugin: str, *, output: str = "", code: int = 0,
                  plugin_status: str | None = None, stderr: str = "",
                  started: datetime | None = None, ended: datetime | None = None) -> dict[str, Any]:
    """A SendReply payload in the agent's shape (one plugin)."""
    now = datetime.now().astimezone()
    return {
        "additionalInfo": {"agent": {"lang": "en-US", "name": "amazon-ssm-agent",
                                     "os": "", "osver": "1", "ver": ""},
                           "dateTime": now.isoformat(), "runId": "",
                           "runtimeStatusCounts": {plugin_status or document_status: 1}},
        "documentStatus": document_status,
        "documentTraceOutput": "",
        "runtimeStatus": {plugin: {
            "status": plugin_status or document_status, "code": code, "name": plugin,
            "output": output, "standardOutput": output, "standardError": stderr,
            "startDateTime": (started or now).isoformat(),
            "endDateTime": (ended or now).isoformat(),
        }},
    }


def patch_summary_item(capture_time: datetime, **counts_and_fields: Any) -> dict[str, Any]:
    """An AWS:PatchSummary inventory item; every content value is sent as a string."""
    content = {key: str(value) for key, value in counts_and_fields.items()}
    return {"TypeName": "AWS:PatchSummary", "SchemaVersion": "1.0",
            "CaptureTime": capture_time.strftime("%Y-%m-%dT%H:%M:%SZ"), "Content": [content]}
