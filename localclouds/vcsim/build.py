"""Build (or find) the vcsim binary through ``scripts/build-vcsim.sh``."""

from __future__ import annotations

import subprocess
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build-vcsim.sh"
#: The script's exit code when Go or Debian's govmomi sources are not installed.
EXIT_TOOLCHAIN_MISSING = 3


class VcsimUnavailable(RuntimeError):
    """vcsim cannot be built here: the Go toolchain or govmomi sources are missing."""


class VcsimBuildFailed(RuntimeError):
    """The toolchain is there but the build failed."""


def ensure_built(script: Path = BUILD_SCRIPT, timeout: float = 600.0) -> Path:
    """The path of an up-to-date vcsim binary, building it first when needed."""
    if not script.is_file():
        raise VcsimUnavailable(f"{script} not found (run from a fleetpatch checkout)")
    result = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode == EXIT_TOOLCHAIN_MISSING:
        raise VcsimUnavailable(result.stderr.strip())
    if result.returncode != 0:
        raise VcsimBuildFailed(f"{script} failed ({result.returncode}): {result.stderr[-2000:]}")
    binary = Path(result.stdout.strip().splitlines()[-1])
    if not binary.is_file():
        raise VcsimBuildFailed(f"{script} reported {binary}, which does not exist")
    return binary
