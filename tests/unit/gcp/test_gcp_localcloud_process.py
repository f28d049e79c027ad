"""``python -m localclouds.gcp`` as ``fleetpatch up`` starts it: healthy once keys exist, clean
exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port as _free_port
from tests.support.processes import wait_healthy

REPO = Path(__file__).resolve().parents[3]




def test_module_entry_point_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "localclouds.gcp", "--host", "127.0.0.1", "--port", str(port),
         "--state-dir", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}/__fleetpatch/health", "the local GCP cloud")
        # Healthy means the key exists already.
        assert (tmp_path / "gcp" / "signing-key.pem").exists()
        assert (tmp_path / "gcp" / "jwks.json").exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
