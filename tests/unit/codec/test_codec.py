"""The payload codec: encrypted with key ids, rotation, fail-closed decoding, installed by the one
connection helper, and a workflow's history read raw holds no plaintext."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from config.codec import ENCODING, KEY_ID, CodecError, EncryptionCodec, data_converter, key_id
from config.settings import CodecSettings, Settings
from config.temporal import connect_config, payload_codec

OLD = "old-key-7Q2m9x4L1v8T0r6W3n5B2k8J1h4G"
NEW = "new-key-3Z9p1y6M4c2X8f0R5s7D3a1K9e6H"
IDENTITY = "eyJhbGciOiJSUzI1NiJ9.identity-of-vm-1234567890"
EXTERNAL_ID = "fleetpatch-externalid-5f0c2a8e-d1b4"


def _plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_encrypted_with_a_key_id_and_no_plaintext() -> None:
    codec = EncryptionCodec([NEW])
    [sealed] = await codec.encode([_plain(IDENTITY)])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == key_id(NEW).encode()
    assert IDENTITY.encode() not in sealed.SerializeToString()
    assert NEW.encode() not in sealed.SerializeToString()
    [opened] = await codec.decode([sealed])
    assert opened == _plain(IDENTITY)


async def test_an_old_key_still_decrypts_after_rotation() -> None:
    [before] = await EncryptionCodec([OLD]).encode([_plain(EXTERNAL_ID)])
    rotated = EncryptionCodec([NEW, OLD])
    [after] = await rotated.encode([_plain(EXTERNAL_ID)])
    assert after.metadata[KEY_ID] == key_id(NEW).encode()  # the first key encrypts
    assert await rotated.decode([before, after]) == [_plain(EXTERNAL_ID)] * 2
    with pytest.raises(CodecError, match="not in the key ring"):
        await EncryptionCodec([NEW]).decode([before])  # the old key dropped: refused, not garbage


async def test_altered_payloads_are_refused() -> None:
    codec = EncryptionCodec([NEW])
    [sealed] = await codec.encode([_plain(IDENTITY)])
    for data in (sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]), sealed.data[:10], b""):
        forged = Payload(metadata=dict(sealed.metadata), data=data)
        with pytest.raises(CodecError):
            await codec.decode([forged])
    # The key id is bound to the ciphertext: relabelling under another key of the ring fails.
    ring = EncryptionCodec([NEW, OLD])
    [sealed] = await ring.encode([_plain(IDENTITY)])
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: key_id(OLD).encode()}, data=sealed.data)
    with pytest.raises(CodecError):
        await ring.decode([relabelled])


def test_settings_build_the_ring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys_file = tmp_path / "codec-keys"
    keys_file.write_text(f"{OLD}\n\n")
    settings = CodecSettings(keys=f"{NEW}", keys_file=keys_file)
    assert settings.ring() == [NEW, OLD]
    codec = payload_codec(settings)
    assert codec is not None and codec.current == key_id(NEW) and codec.key_ids == [key_id(NEW), key_id(OLD)]
    assert payload_codec(CodecSettings()) is None
    monkeypatch.setenv("FLEETPATCH_CODEC__KEYS", f"{NEW},short")
    with pytest.raises(ValueError, match="FLEETPATCH_CODEC__KEYS is shorter"):
        Settings()


def test_the_connection_helper_installs_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("FLEETPATCH_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("FLEETPATCH_CODEC__KEYS", NEW)
    converter = connect_config(Settings())["data_converter"]
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.failure_converter._encode_common_attributes  # failure texts encrypted too
    monkeypatch.delenv("FLEETPATCH_CODEC__KEYS")
    assert connect_config(Settings())["data_converter"].payload_codec is None


@dataclass
class Secrets:
    identity: str
    external_id: str


@activity.defn(name="codec_test_echo")
async def echo(inp: Secrets) -> Secrets:
    return inp


@workflow.defn(name="CodecTest")
class CodecTest:
    @workflow.run
    async def run(self, inp: Secrets) -> Secrets:
        out = await workflow.execute_activity(echo, inp, start_to_close_timeout=timedelta(seconds=30))
        if inp.identity.endswith("fail"):
            raise ApplicationError(f"refused {inp.identity} for {inp.external_id}", non_retryable=True)
        return out


@pytest.mark.parametrize("fail", [False, True])
async def test_history_read_raw_holds_no_plaintext(dev_env, fail: bool) -> None:  # noqa: ANN001
    raw = dev_env.client
    codec = EncryptionCodec([NEW])
    config = raw.config()
    config["data_converter"] = data_converter(codec)
    client = Client(**config)
    queue = f"codec-{uuid.uuid4().hex[:8]}"
    secrets = Secrets(IDENTITY + ("-fail" if fail else ""), EXTERNAL_ID)
    async with Worker(client, task_queue=queue, workflows=[CodecTest], activities=[echo],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await client.start_workflow(CodecTest.run, secrets, id=f"codec-{uuid.uuid4()}",
                                             task_queue=queue, memo={"identity": secrets.identity})
        if fail:
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result()
            assert EXTERNAL_ID in str(failed.value.cause)  # readable through the codec
        else:
            assert await handle.result() == secrets
    history = await raw.get_workflow_handle(handle.id).fetch_history()
    dumped = history.to_json() + "".join(e.SerializeToString().hex() for e in history.events)
    for secret in (IDENTITY, EXTERNAL_ID):
        assert secret not in dumped and secret.encode().hex() not in dumped
    described = await raw.get_workflow_handle(handle.id).describe()
    assert IDENTITY.encode() not in described.raw_description.SerializeToString()


def test_a_local_json_path_still_gets_the_codec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("FLEETPATCH_CODEC__KEYS", NEW)
    converter = connect_config(tmp_path / "local.json")["data_converter"]
    assert isinstance(converter.payload_codec, EncryptionCodec) and converter.payload_codec.current == key_id(NEW)
