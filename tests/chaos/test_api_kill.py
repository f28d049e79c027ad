"""A lost answer costs seconds, not a VM: the API is SIGKILLed twice during a small boot storm on
the local default (``fleetpatch up``); VMs whose answer was lost register again and get the
running enrollment's answer. Audited like the other storms (``tests/chaos/test_chaos.py``), plus
the VMs that gave up on a 409 loop; the figures are printed.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.chaos.test_chaos import Local, _assert_kept, _finish, _names, _report, _storm, _wait_registering, audit
from tests.chaos.test_chaos import local as local  # noqa: F401, PLC0414 - the module's fleetpatch up

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

VMS = int(os.environ.get("FLEETPATCH_CHAOS_API_VMS", "16"))


def test_api_sigkilled_twice_during_a_boot_storm_loses_no_vm(local: Local) -> None:  # noqa: F811
    before = _names(local)
    started = time.monotonic()
    storm = _storm(local, VMS, customers=2)
    _wait_registering(local, len(before) + VMS)
    kills = []
    for _ in range(2):
        pid = local.pid("api")
        os.kill(pid, signal.SIGKILL)
        back = local.wait_restarted("api", pid)
        kills.append(f"api at {time.monotonic() - started:.0f}s (back in {back:.0f}s)")
        time.sleep(3)
    waited = _finish(storm)
    figures = {"storm_seconds": round(time.monotonic() - started), "killed": kills,
               "simulate_exit": storm.returncode, "waited_after_kills": round(waited), **audit(local, before)}
    figures["gave_up_on_409"] = sum(1 for reason in figures["failed"] if "409" in reason or "EnrollmentRunning" in reason)
    _report(f"SIGKILL of the API twice during {VMS} registrations", figures)
    assert figures["gave_up_on_409"] == 0, figures
    _assert_kept(figures)
