"""p2: a boot storm on a running local default: ``fleetpatch simulate`` boots N VMs over GCP,
Azure, EC2 and the vCenter for K demo customers that are new (so K x 4 systems accounts are vended
during the storm, through the local Organizations' CreateAccount delay and its cap of 5 in
progress). Every VM runs the real startup script against its cloud's metadata service.

``p2_storm_s`` is the simulate command's time (link the customers, boot, all enrolled);
``p2_duplicates`` counts duplicate systems accounts, VMs with several managed instances and
activations left behind, read from the local AWS afterwards; ``p2_peak_rss_mb`` is the largest
peak RSS (VmHWM) of one fleetpatch process (API, workers), the local clouds listed apart.
"""

from __future__ import annotations

import time

from benchmarks.figures import Results
from benchmarks.local import LocalDefault
from tests.chaos.test_chaos import Local, audit


def run(local: LocalDefault, results: Results, vms: int, customers: int, delay: str) -> None:
    before = local.use()
    started = time.perf_counter()
    done = local.cli("simulate", "--vms", str(vms), "--customers", str(customers), "--timeout", str(max(600, vms * 3)))
    storm_s = time.perf_counter() - started
    after = local.use()
    figures = audit(Local(local.state, local.env), before=set(), settle=60)
    duplicates = (len(figures["duplicate_systems_accounts"]) + len(figures["vms_with_several_instances"])
                  + figures["leftover_activations"])
    ours = {name: use for name, use in after.items() if name.startswith("worker-") or name == "api"}
    results.set("p2_storm_s", storm_s if figures["enrolled"] == vms else None)
    results.set("p2_duplicates", duplicates)
    results.set("p2_peak_rss_mb", max(use.peak_rss_mb for use in ours.values()))
    if figures["enrolled"] != vms:
        results.notes["p2_storm_s"] = (f"{figures['enrolled']} of {vms} enrolled after {storm_s:.0f}s "
                                       f"(simulate exit {done.returncode}): {figures['failed'][:2]}")
    results.conditions["p2"] = (f"{vms} VMs over GCP, Azure, EC2, vCenter for {customers} new customers"
                                f" ({figures['cloud_accounts']} systems accounts vended), CreateAccount delay {delay},"
                                " at most 5 in progress")
    cpu = {name: round(after[name].cpu_s - before[name].cpu_s, 1) for name in after if name in before}
    results.details["p2"] = {
        **{k: figures[k] for k in ("vms", "enrolled", "not_finished", "cloud_accounts", "managed_instances",
                                   "leftover_activations")},
        "peak_rss_mb_by_process": {n: round(u.peak_rss_mb, 1) for n, u in sorted(after.items())},
        "cpu_s_during_storm_by_process": dict(sorted(cpu.items(), key=lambda kv: -kv[1])),
    }
