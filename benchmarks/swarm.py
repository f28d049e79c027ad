"""``python -m benchmarks.swarm``: many simulated SSM agents in one process, for the p3 window.

The agents are the fleet's own (``localclouds.fleet.agent``: ping, GetMessages, run
AWS-RunPatchBaseline against a synthetic package set, SendReply, PutComplianceItems), registered
in a systems account of the local AWS with multi-use activations (as an operator would for a lab;
SSM allows at most 1,000 registrations per activation, so one per thousand agents), so a window
can target thousands of real managed instances without booting thousands of VMs. Registrations
run ``--threads`` at a time through the real RegisterManagedInstance; every agent shares one
instance key (key generation is not what the benchmark measures) and the process's botocore
clients (``AgentClient``: each call signed with its own agent's credentials).

The agents' loops start only once every agent has registered (spread over at most one poll
interval), so registration does not compete with the polls of the agents already up.
Writes ``{"registered": N, "online": M}`` to ``--status`` as agents come up; runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from contracts.providers import OsFamily
from localclouds.aws.agent_client import AgentClient, InstanceKey
from localclouds.fleet import catalogue
from localclouds.fleet.agent import Agent, AgentSettings, AgentVm
from localclouds.fleet.platforms import PLATFORMS


#: Agents whose loops start per second once all have registered (their first ping, association
#: check and poll); a loop that ran during the registrations slowed them (10,000: 21 minutes).
STARTS_PER_SECOND = 500


def _write(path: Path, **status: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    tmp.replace(path)


async def main(args: argparse.Namespace) -> None:
    pool = ThreadPoolExecutor(args.threads, thread_name_prefix="swarm")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = AgentClient(args.endpoint, args.region)
    key = InstanceKey.generate()
    now = datetime.now(UTC)
    families = [OsFamily(f) for f in args.os.split(",")]
    software = {f: catalogue.initial_software(catalogue.build(f, now), "swarm", now) for f in families}
    settings = AgentSettings(args.endpoint, args.region, poll_interval=args.poll_interval,
                             ping_interval=args.ping_interval, command_duration=args.command_duration)
    gate = asyncio.Semaphore(args.threads)
    agents: list[Agent] = []

    activations = [a.split(":", 1) for a in args.activation]

    async def one(n: int) -> None:
        activation_id, code = activations[n // args.per_activation]
        async with gate:
            registration = await loop.run_in_executor(pool, lambda: client.register(activation_id, code, key=key))
        family = families[n % len(families)]
        vm = AgentVm(f"swarm-{n:05d}", PLATFORMS[family], catalogue.Installed.from_json(software[family].to_json()),
                     save=lambda: None, registration=registration)
        agents.append(Agent(vm, settings, pool))

    async def start(agent: Agent, delay: float) -> None:
        await asyncio.sleep(delay)
        await agent.run(stop)

    tasks: list[asyncio.Task[None]] = []
    registering = asyncio.ensure_future(asyncio.gather(*(one(n) for n in range(args.count))))
    while not stop.is_set():  # the status from the first registration on
        _write(args.status, registered=len(agents), online=sum(a.online.is_set() for a in agents))
        if registering.done() and registering.exception() is not None:
            raise registering.exception()  # type: ignore[misc]
        if registering.done() and not tasks:  # every agent registered: their loops start, spread over a poll
            spread = min(args.poll_interval, args.count / STARTS_PER_SECOND)
            tasks += [asyncio.create_task(start(a, spread * i / len(agents))) for i, a in enumerate(agents)]
        try:
            await asyncio.wait_for(stop.wait(), timeout=2)
        except TimeoutError:
            pass
    registering.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pool.shutdown(wait=False, cancel_futures=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.swarm")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--activation", action="append", required=True, metavar="ID:CODE",
                        help="an activation; agent n registers with the (n // --per-activation)th")
    parser.add_argument("--per-activation", type=int, default=1000)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--status", type=Path, required=True)
    parser.add_argument("--os", default="ubuntu,amazon-linux-2,windows")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--ping-interval", type=float, default=300.0)
    parser.add_argument("--command-duration", type=float, default=1.0)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
