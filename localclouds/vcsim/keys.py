"""The local vCenter's token signing key: generated once under ``DIR/vcsim/``, then reused."""

from __future__ import annotations

import os
from pathlib import Path

from clouds.vmware.token import SigningAlg, generate_signing_key
from localclouds.vcsim import key_paths


def ensure_keys(state_dir: Path, alg: SigningAlg = "EdDSA") -> tuple[Path, Path]:
    """``(signing key, public key)`` paths, creating the pair if either file is missing."""
    signing, public = key_paths(state_dir)
    if signing.is_file() and public.is_file():
        return signing, public
    signing.parent.mkdir(parents=True, exist_ok=True)
    private_pem, public_pem = generate_signing_key(alg)
    _write(signing, private_pem, 0o600)
    _write(public, public_pem, 0o644)
    return signing, public


def _write(path: Path, text: str, mode: int) -> None:
    """Write atomically with the final mode from the start (the private key is never 0644)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
