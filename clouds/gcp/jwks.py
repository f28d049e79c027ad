"""Where the verifier's public keys come from: a JWKS URL (Google's, or a local cloud's) or a file.

The verifier asks a :class:`KeySource` for the key of one ``kid`` and does no I/O of its own.
Two sources:

- :class:`StaticJwks`: a JWKS held in memory (from a dict or a file), for ``fleetpatch verify
  --jwks FILE`` and for tests. Never refreshes.
- :class:`RemoteJwks`: pyjwt's ``PyJWKClient`` (the network fetch and the JWKS cache live
  there). An unknown ``kid`` triggers one forced refresh, since Google rotates keys; refreshes are
  rate-limited (at most one per ``min_refresh_interval``), so a stream of tokens with made-up kids
  cannot turn the worker into a JWKS download loop.

Only RSA keys meant for RS256 signatures (``use`` absent or ``sig``, ``alg`` absent or ``RS256``,
at least 2048 bits) are ever returned: a JWKS entry for anything else is as good as absent.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from contracts.errors import ErrorType, FleetpatchError, TransientCloudError

MIN_RSA_BITS = 2048


class KeySource(Protocol):
    """Public keys by key id. ``None`` means: no usable key of that id (the token is refused).

    A source that must fetch may raise ``TransientCloudError`` when it cannot reach its keys; that
    is not a verdict on the token and may be retried.
    """

    def get_key(self, kid: str) -> RSAPublicKey | None: ...


class JwksInvalid(FleetpatchError):
    """A JWKS given by configuration (a file) is unusable: the operator must fix it."""

    def __init__(self, reason: str) -> None:
        super().__init__(ErrorType.CONFIGURATION_INVALID, reason)


def rs256_keys(jwks: Any) -> dict[str, RSAPublicKey]:
    """The usable RS256 keys of a JWKS document, by kid. Unusable entries are skipped."""
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise ValueError("a JWKS is a JSON object with a 'keys' list")
    keys: dict[str, RSAPublicKey] = {}
    for entry in jwks["keys"]:
        key = _rs256_key(entry)
        if key is not None:
            keys.setdefault(entry["kid"], key)
    return keys


def _rs256_key(entry: Any) -> RSAPublicKey | None:
    if not isinstance(entry, Mapping) or entry.get("kty") != "RSA":
        return None
    if not isinstance(entry.get("kid"), str) or not entry["kid"]:
        return None
    if entry.get("use", "sig") != "sig" or entry.get("alg", "RS256") != "RS256":
        return None
    if "d" in entry:  # a private key has no business in a JWKS we trust; ignore it
        return None
    try:
        key = RSAAlgorithm.from_jwk(dict(entry))
    except (jwt.exceptions.PyJWTError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        return None
    return key


class StaticJwks:
    """A fixed set of keys (a JWKS document held in memory)."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        try:
            self._keys = rs256_keys(jwks)
        except ValueError as exc:
            raise JwksInvalid(str(exc)) from exc

    @classmethod
    def from_file(cls, path: Path) -> StaticJwks:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise JwksInvalid(f"cannot read JWKS file {path}: {exc}") from exc
        return cls(document)

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def get_key(self, kid: str) -> RSAPublicKey | None:
        return self._keys.get(kid)


class RemoteJwks:
    """Keys from a JWKS URL through ``PyJWKClient``, with a rate-limited refresh on unknown kids.

    ``client`` is injected (tests pass a ``PyJWKClient`` whose ``fetch_data`` serves a dict);
    :meth:`for_url` builds the production one. ``monotonic`` is the clock used for the refresh
    rate limit.
    """

    def __init__(
        self,
        client: jwt.PyJWKClient,
        *,
        min_refresh_interval: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._min_refresh_interval = min_refresh_interval
        self._monotonic = monotonic
        self._last_refresh: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_url(
        cls,
        url: str,
        *,
        cache_lifespan: float = 3600.0,
        timeout: float = 10.0,
        min_refresh_interval: float = 30.0,
    ) -> RemoteJwks:
        """The production source. Google's JWKS rotates within days; an hour's cache is safe
        because an unknown kid refreshes at once anyway."""
        try:
            client = jwt.PyJWKClient(
                url,
                cache_jwk_set=True,
                lifespan=cache_lifespan,
                timeout=timeout,
                cooldown_duration=0,  # the rate limit is ours (see get_key)
            )
        except jwt.exceptions.PyJWKClientError as exc:
            raise JwksInvalid(f"unusable JWKS URL {url!r}: {exc}") from exc
        return cls(client, min_refresh_interval=min_refresh_interval)

    def get_key(self, kid: str) -> RSAPublicKey | None:
        with self._lock:
            cache = self._client.jwk_set_cache
            cold = cache is None or cache.get() is None
            keys = self._fetch(refresh=False)
            if cold:
                # That lookup downloaded a fresh set: it is this kid's refresh.
                self._last_refresh = self._monotonic()
            if kid in keys:
                return keys[kid]
            now = self._monotonic()
            if cold or (
                self._last_refresh is not None
                and now - self._last_refresh < self._min_refresh_interval
            ):
                return None
            self._last_refresh = now
            return self._fetch(refresh=True).get(kid)

    def _fetch(self, *, refresh: bool) -> dict[str, RSAPublicKey]:
        """The current key set; every pyjwt failure becomes a retryable error (no verdict)."""
        try:
            jwk_set = self._client.get_jwk_set(refresh=refresh)
        except jwt.exceptions.PyJWKClientConnectionError as exc:
            raise TransientCloudError(ErrorType.CLOUD_UNAVAILABLE, f"cannot fetch the JWKS: {exc}") from exc
        except (jwt.exceptions.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise TransientCloudError(
                ErrorType.CLOUD_UNAVAILABLE, f"the JWKS endpoint answered no usable key set: {exc}"
            ) from exc
        keys: dict[str, RSAPublicKey] = {}
        for jwk in jwk_set.keys:
            usable = (
                jwk.key_type == "RSA"
                and jwk.public_key_use in (None, "sig")
                and jwk.algorithm_name == "RS256"
                and isinstance(jwk.key, RSAPublicKey)
                and jwk.key.key_size >= MIN_RSA_BITS
            )
            if usable and jwk.key_id:
                keys.setdefault(jwk.key_id, jwk.key)
        return keys


def key_source(
    *, jwks_file: Path | None, jwks_url: str, min_refresh_interval: float = 30.0
) -> KeySource:
    """The key source a worker uses: a file when configured (offline), else the URL."""
    if jwks_file is not None:
        return StaticJwks.from_file(jwks_file)
    return RemoteJwks.for_url(jwks_url, min_refresh_interval=min_refresh_interval)
