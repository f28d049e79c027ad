"""``--profile DIR``: py-spy samples the local default's busiest processes while a part runs
(top functions as text with ``--format raw`` folded stacks, and a flame graph per process)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

from benchmarks.local import LocalDefault

PROCESSES = ("worker-orchestrator", "worker-aws", "worker-gcp", "api", "aws")


@contextmanager
def sampling(local: LocalDefault, out: Path | None, label: str, rate: int = 50) -> Iterator[None]:
    """py-spy record on each of PROCESSES until the block ends (nothing when ``out`` is None)."""
    spy = shutil.which("py-spy") or str(Path(__import__("sys").executable).parent / "py-spy")
    if out is None or not Path(spy).exists():
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    pids = local.pids()
    running = []
    for name in PROCESSES:
        if name not in pids:
            continue
        for fmt, suffix in (("raw", "folded"),):
            running.append(subprocess.Popen(
                [spy, "record", "--pid", str(pids[name]), "--rate", str(rate), "--format", fmt, "--nonblocking",
                 "--output", str(out / f"{label}-{name}.{suffix}")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        yield
    finally:
        for proc in running:
            proc.send_signal(signal.SIGINT)
        for proc in running:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def top(folded: Path, count: int = 25) -> list[tuple[str, float]]:
    """The functions with the most samples anywhere on the stack (inclusive share) in a folded file."""
    total, inclusive = 0, {}
    for line in folded.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        samples = int(n)
        total += samples
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + samples
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])[:count]
    return [(frame, samples / total) for frame, samples in ranked] if total else []
