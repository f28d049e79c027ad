"""How every fleetpatch process connects to Temporal.

The connection comes from Temporal's own environment configuration (``TEMPORAL_ADDRESS``,
``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*``, ``TEMPORAL_PROFILE`` and the
``temporal.toml`` profile file). When that names no address, the embedded local default's
``.fleetpatch/local.json`` is used, so ``fleetpatch doctor`` works next to ``fleetpatch up``.

Every client built here (and so every worker, which runs on its client) encrypts its payloads
with the payload codec when codec keys are configured (``config/codec.py``,
``FLEETPATCH_CODEC__KEYS``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.envconfig import ClientConfig

from config.codec import EncryptionCodec, data_converter
from config.settings import CodecSettings, Settings


class TemporalNotConfigured(RuntimeError):
    pass


def payload_codec(settings: CodecSettings) -> EncryptionCodec | None:
    """The codec of the configured key ring; None when no key is configured."""
    ring = settings.ring()
    return EncryptionCodec(ring) if ring else None


def connect_config(settings: Settings | Path | None = None) -> dict[str, Any]:
    """Connection options; ``settings`` (or, for older callers, the local.json path, with the
    rest of the settings read from the environment) also gives the payload codec."""
    if not isinstance(settings, Settings):
        local = settings
        settings = Settings()
        local_json: Path | None = local
    else:
        local_json = settings.local_json
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    codec = settings.codec
    if not codec.ring() and local_json is not None and local_json.exists():
        codec = _local_codec(local_json) or codec
    config["data_converter"] = data_converter(payload_codec(codec))
    if not config.get("target_host") and local_json is not None and local_json.exists():
        try:
            config["target_host"] = json.loads(local_json.read_text())["temporal"]
        except (ValueError, KeyError) as err:
            raise TemporalNotConfigured(f"{local_json} has no usable 'temporal' address: {err}") from err
    if not config.get("target_host"):
        raise TemporalNotConfigured(
            "no Temporal address: set TEMPORAL_ADDRESS (or a temporal.toml profile), "
            "or start the local default with `fleetpatch up`"
        )
    return config


def _local_codec(local_json: Path) -> CodecSettings | None:
    """The local default's codec key (``fleetpatch up`` lists its file in local.json)."""
    try:
        path = json.loads(local_json.read_text()).get("codec_keys_file")
    except ValueError:
        return None
    return CodecSettings(keys_file=Path(path)) if path and Path(path).exists() else None


async def connect(settings: Settings | Path | None = None, **overrides: Any) -> Client:
    config = connect_config(settings)
    config.update(overrides)
    return await Client.connect(**config)


async def connect_with_retry(
    settings: Settings | Path | None = None,
    *,
    attempts: int = 30,
    delay_seconds: float = 1.0,
    **overrides: Any,
) -> Client:
    """Connect, waiting for a server that is still starting. Configuration errors are not retried."""
    import asyncio
    import logging

    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            return await connect(settings, **overrides)
        except TemporalNotConfigured:
            raise
        except Exception as err:  # connection refused, DNS, TLS handshake: the server may be starting
            last = err
            logging.getLogger("fleetpatch.temporal").info(
                "temporal not reachable yet", extra={"attempt": attempt, "error": str(err)}
            )
            await asyncio.sleep(min(delay_seconds * attempt, 5.0))
    raise ConnectionError(f"Temporal unreachable after {attempts} attempts: {last}")


async def register_search_attributes(client: Client) -> list[str]:
    """Register fleetpatch's search attributes on a server that lacks them (idempotent).

    Returns the names it added. The list is ``contracts/search_attributes.py``, the only one.
    """
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
    from temporalio.service import RPCError, RPCStatusCode

    from contracts import search_attributes

    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        existing = set(listed.custom_attributes)
    except RPCError as err:
        if err.status != RPCStatusCode.UNIMPLEMENTED:  # the time-skipping test server cannot list
            raise
        existing = set()
    missing = {key.name: key.indexed_value_type for key in search_attributes.ALL if key.name not in existing}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)


async def ensure_namespace(client: Client, retention: timedelta) -> bool:
    """Create the client's namespace when it does not exist. Returns whether it was created."""
    from google.protobuf.duration_pb2 import Duration
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=client.namespace))
        return False
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    period = Duration()
    period.FromTimedelta(retention)
    try:
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(namespace=client.namespace, workflow_execution_retention_period=period)
        )
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:  # created concurrently
            raise
        return False
    return True
