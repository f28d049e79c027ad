"""Fixtures for the EC2 and Azure identity verifier tests: the real conformance samples (with
the clock each was valid at) and locally generated signing material."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from clouds.azure.verify import production_intermediates, production_roots
from clouds.ec2.verify import Ec2TrustStore

from .pkcs7_builders import LocalChain, make_certificate, make_chain, name, pem_body, rsa_key

DATA = Path(__file__).resolve().parents[2] / "data" / "conformance"
AWS = DATA / "aws"
AZURE = DATA / "azure"


def read(path: Path) -> str:
    return path.read_text(encoding="ascii")


@dataclass(frozen=True)
class Ec2Sample:
    name: str
    identity: dict[str, str]
    now: datetime
    account: str
    instance: str
    region: str


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ec2_samples() -> list[Ec2Sample]:
    """Every production EC2 sample in each signed form it has, with a clock inside validity."""
    tc, mp = AWS / "tc-us-west-2-2018", AWS / "metaphor-ap-southeast-2-2026"
    tc_doc = (tc / "document.json").read_text(encoding="utf-8")
    mp_doc = (mp / "document.json").read_text(encoding="utf-8")
    tc_ids = ("692406183521", "i-0a30e04d85e6f8793", "us-west-2")
    mp_ids = ("189292791360", "i-0c5541936caf78c12", "ap-southeast-2")
    vault = ("121659014334", "i-f79fe56c", "us-east-1")
    ncbi = ("250813660784", "i-06a91ac746b572ef4", "us-east-1")
    tc_now, mp_now = _at("2018-05-10T00:00:00"), _at("2026-02-16T01:00:00")
    return [
        Ec2Sample("tc-rsa2048", {"rsa2048": read(tc / "rsa2048.b64")}, tc_now, *tc_ids),
        Ec2Sample(
            "tc-rsa2048+document",
            {"rsa2048": read(tc / "rsa2048.b64"), "document": tc_doc},
            tc_now,
            *tc_ids,
        ),
        Ec2Sample("tc-pkcs7", {"pkcs7": read(tc / "pkcs7.b64")}, tc_now, *tc_ids),
        Ec2Sample(
            "tc-signature",
            {"document": tc_doc, "signature": read(tc / "signature.b64")},
            tc_now,
            *tc_ids,
        ),
        Ec2Sample(
            "metaphor-rsa2048+document",
            {"rsa2048": read(mp / "rsa2048.b64"), "document": mp_doc},
            mp_now,
            *mp_ids,
        ),
        Ec2Sample(
            "metaphor-signature",
            {"document": mp_doc, "signature": read(mp / "signature.b64")},
            mp_now,
            *mp_ids,
        ),
        Ec2Sample(
            "vault-pkcs7",
            {"pkcs7": pem_body(read(AWS / "vault-us-east-1-2016-dsa" / "pkcs7.pem"))},
            _at("2016-04-09T00:00:00"),
            *vault,
        ),
        Ec2Sample(
            "ncbi-pkcs7",
            {"pkcs7": read(AWS / "ncbi-us-east-1-2019-dsa" / "pkcs7.b64")},
            _at("2019-06-26T00:00:00"),
            *ncbi,
        ),
    ]


@dataclass(frozen=True)
class AzureSample:
    name: str
    attested: dict[str, str]
    nonce: str
    now: datetime
    vm_id: str
    subscription: str


def azure_samples() -> list[AzureSample]:
    redhat, coder = AZURE / "redhat-westeurope-2021", AZURE / "coder-eastus-2024"
    return [
        AzureSample(
            "redhat-westeurope-2021",
            json.loads((redhat / "attested-document.json").read_text(encoding="utf-8")),
            "20210104-195534",
            _at("2021-01-04T13:58:00"),
            "f904ece8-c6c1-4b5c-881f-309b50f25e56",
            "",
        ),
        AzureSample(
            "coder-eastus-2024",
            {"encoding": "pkcs7", "signature": read(coder / "signature.b64")},
            "20240422-233245",
            _at("2024-04-22T17:35:00"),
            "960a4b4a-dab2-44ef-9b73-7753043b4f16",
            "05e8b285-4ce1-46a3-b4c9-f51ba67d6acc",
        ),
    ]


@pytest.fixture(scope="session")
def production_ec2() -> Ec2TrustStore:
    return Ec2TrustStore.production()


@pytest.fixture(scope="session")
def azure_roots() -> list[x509.Certificate]:
    return list(production_roots())


@pytest.fixture(scope="session")
def azure_intermediates() -> list[x509.Certificate]:
    return list(production_intermediates())


#: The clock of every locally signed document.
LOCAL_NOW = _at("2025-06-01T12:00:00")


@pytest.fixture(scope="session")
def local_chain() -> LocalChain:
    """A local CA chain whose leaf is a well-formed Azure-metadata-like certificate."""
    return make_chain(LOCAL_NOW)


@dataclass(frozen=True)
class LocalEc2:
    """A locally pinned EC2 region: documents signed with ``key`` verify under ``trust``."""

    key: object
    cert: x509.Certificate
    trust: Ec2TrustStore


@pytest.fixture(scope="session")
def local_ec2() -> LocalEc2:
    key = rsa_key("ec2-local-region")
    subject = name("local ec2 us-west-2", ORGANIZATION_NAME="fleetpatch tests")
    cert = make_certificate(
        subject,
        key,
        not_before=_at("2015-01-01T00:00:00"),
        not_after=_at("2195-01-01T00:00:00"),
    )
    trust = Ec2TrustStore(certificates={"rsa2048": {"us-west-2": cert}})
    return LocalEc2(key=key, cert=cert, trust=trust)


def ec2_document(**overrides: object) -> bytes:
    """An EC2 identity document as IMDS formats it, with fields overridden or (None) removed."""
    fields: dict[str, object] = {
        "accountId": "111122223333",
        "architecture": "x86_64",
        "availabilityZone": "us-west-2a",
        "imageId": "ami-0123456789abcdef0",
        "instanceId": "i-0123456789abcdef0",
        "instanceType": "t3.micro",
        "pendingTime": "2025-06-01T11:00:00Z",
        "privateIp": "10.0.0.10",
        "region": "us-west-2",
        "version": "2017-09-30",
    }
    for key, value in overrides.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return json.dumps(fields, indent=2, separators=(",", " : ")).encode("utf-8")


def azure_document(**overrides: object) -> bytes:
    """An Azure attested-document content as IMDS formats it."""
    fields: dict[str, object] = {
        "licenseType": "",
        "nonce": "challenge0001",
        "plan": {"name": "", "product": "", "publisher": ""},
        "sku": "22_04-lts-gen2",
        "subscriptionId": "0b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
        "timeStamp": {
            "createdOn": "06/01/25 11:58:00 -0000",
            "expiresOn": "06/01/25 17:58:00 -0000",
        },
        "vmId": "7d6c5b4a-3921-4f0e-8d7c-6b5a49382716",
    }
    for key, value in overrides.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return json.dumps(fields, separators=(",", ":")).encode("utf-8")
