"""Benchmark: Tether under load, against bare Temporal in the same run, with one, two and three
worker processes on one task queue.

Starts its own Temporal dev server and PostgreSQL, and worker processes as users start them
(`worker.py`), beside a bare worker process (scripts/bare_worker.py: trivial workflows, no
interceptor, no sandbox). Then:

1. Rated load (one Tether worker): tool-call reports sealed as the gateway seals them, sent at a
   fixed rate (10/s, then 50/s) to sessions all started together, open loop (each report is
   sent on schedule whatever the others do; its latency counts from when it was due), against
   no-op updates to as many bare workflows at the same rate. p50/p99 and the ratio.
2. Scale-out: for 1, 2 and 3 Tether worker processes, task lifecycles (create, claim, submit
   with one `true` check) at concurrency 20 and reports at saturation (closed loop, 40 in
   flight), with the CPU each kind of process used per operation: where it saturates, and why.

    .venv/bin/python scripts/bench_load.py [--seconds 30] [--sessions 20] [--workers 1,2,3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.client import Client, WorkflowHandle  # noqa: E402

from scripts.bare_worker import NoopWorkflow  # noqa: E402
from scripts.bench_governor import report  # noqa: E402
from scripts.throwaway import Throwaway, processes, throwaway_stack, worker_processes  # noqa: E402
from tether import client as api  # noqa: E402
from tether.client.connection import sealed  # noqa: E402
from tether.contracts import SessionInput, ShellCheck, TaskSpec  # noqa: E402
from tether.ops.runtime import run_and_exit  # noqa: E402
from tether.trust import seals  # noqa: E402


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


Send = Callable[[int], Awaitable[object]]


async def rated(rate: float, seconds: float, send: Send) -> list[float]:
    """Send at `rate` per second for `seconds`, open loop: latencies from each send's due time."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.1
    latencies: list[float] = []

    async def one(n: int) -> None:
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await send(n)
        latencies.append(time.perf_counter() - due)

    await asyncio.gather(*(one(n) for n in range(total)))
    return latencies


async def closed(in_flight: int, total: int, send: Send) -> float:
    """`total` operations with `in_flight` at a time: operations per second."""
    counter = iter(range(total))

    async def lane() -> None:
        for n in counter:
            await send(n)

    t0 = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(in_flight)))
    return total / (time.perf_counter() - t0)


class Load:
    """Sessions and bare workflows on one stack, and how to send to them."""

    def __init__(self, stack: Throwaway, queue: str, bare_queue: str, sessions: int) -> None:
        self.stack, self.queue, self.bare_queue = stack, queue, bare_queue
        self.agents = [f"load-{i:02d}" for i in range(sessions)]
        self.gateway = sealed(stack.client, stack.gateway)
        self.bare = Client(**{**stack.client.config(), "interceptors": []})
        self.noops: list[WorkflowHandle[NoopWorkflow, None]] = []
        self.sent = 0

    @property
    def config(self) -> str:
        return "".join(f'[[agents]]\nname = "{a}"\n' for a in self.agents)

    async def open(self) -> None:
        client = self.stack.client
        # All at once, as a team that starts its day together.
        await asyncio.gather(
            *(
                api.start_session(client, self.queue, SessionInput(agent=a, runtime="sdk"))
                for a in self.agents
            )
        )
        self.noops = [
            await self.bare.start_workflow(
                NoopWorkflow.run, id=f"noop-{uuid.uuid4().hex[:8]}", task_queue=self.bare_queue
            )
            for _ in self.agents
        ]

    async def close(self) -> None:
        for a in self.agents:
            await api.end_session(self.stack.client, a, "benchmark done", "bench")
        for h in self.noops:
            await h.terminate()

    async def report(self, n: int) -> None:
        agent = self.agents[n % len(self.agents)]
        self.sent += 1
        with seals.speaking(agent):
            await api.report(self.gateway, agent, report(self.sent))

    async def noop(self, n: int) -> None:
        await self.noops[n % len(self.noops)].execute_update(NoopWorkflow.noop, n)

    async def lifecycle(self, n: int) -> None:
        client, task_id = self.stack.client, f"{self.queue}-{n}"
        spec = TaskSpec(id=task_id, title=task_id, checks=[ShellCheck(command="true")])
        await api.create_task(client, self.queue, spec)
        await api.claim_task(client, task_id, "bench")
        assert (await api.submit_task(client, task_id, "bench", None)).done


async def rated_phase(stack: Throwaway, args: argparse.Namespace) -> list[str]:
    queue = f"load-{uuid.uuid4().hex[:6]}"
    lines = [
        f"1. rated load: {args.sessions} sessions started together, one Tether worker process "
        f"(sandbox {args.sandbox}); {args.seconds:g} s per rate, open loop",
        f"{'rate':>8} {'':>24} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}",
    ]
    load = Load(stack, queue, f"{queue}-bare", args.sessions)
    async with (
        worker_processes(stack, queue, config=load.config, TETHER_WORKFLOW_SANDBOX=args.sandbox),
        worker_processes(stack, load.bare_queue, bare=True),
    ):
        await load.open()
        for rate in (10.0, 50.0):
            bare = await rated(rate, args.seconds, load.noop)
            tether = await rated(rate, args.seconds, load.report)
            for name, got in (("bare no-op update", bare), ("sealed report", tether)):
                lines.append(
                    f"{rate:>6g}/s {name:>24} {statistics.median(got) * 1000:8.1f} "
                    f"{pct(got, 0.99):8.1f} {max(got) * 1000:8.1f}"
                )
            ratio50 = statistics.median(tether) / statistics.median(bare)
            ratio99 = pct(tether, 0.99) / pct(bare, 0.99)
            lines.append(f"{'':>8} ratio p50 {ratio50:.2f}, p99 {ratio99:.2f} (goal p99 <= 2.0)")
        await load.close()
    return lines


async def scale_phase(stack: Throwaway, args: argparse.Namespace) -> list[str]:
    lines = [
        "2. scale-out: Tether worker processes on one task queue; tasks at concurrency 20, "
        "reports with 40 in flight",
        f"{'workers':>8} {'tasks/s':>8} {'reports/s':>10}   CPU ms per report: "
        f"temporal / workers / this process (cores busy of {os.cpu_count()})",
    ]
    for count in [int(w) for w in args.workers.split(",")]:
        queue = f"scale{count}-{uuid.uuid4().hex[:6]}"
        load = Load(stack, queue, f"{queue}-bare", args.sessions)
        async with worker_processes(
            stack, queue, count=count, config=load.config, TETHER_WORKFLOW_SANDBOX=args.sandbox
        ):
            await load.open()
            tasks_per_s = await closed(20, args.tasks, load.lifecycle)
            before = processes()
            reports_per_s = await closed(40, args.reports, load.report)
            after = processes()
            await load.close()
        spent = {k: (after[k][0] - before.get(k, (0.0, 0))[0]) for k in after}
        per = {k: v * 1000 / args.reports for k, v in spent.items()}
        worker_cpu = sum(v for k, v in per.items() if k.startswith("python"))
        busy = sum(spent.values()) / (args.reports / reports_per_s)
        lines.append(
            f"{count:>8} {tasks_per_s:8.1f} {reports_per_s:10.1f}   "
            f"{per.get('temporal', 0.0):.1f} / {worker_cpu:.1f} / {per.get('this process', 0):.1f}"
            f" ({busy:.2f})"
        )
    return lines


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--skip-rated", action="store_true")
    parser.add_argument(
        "--sandbox", choices=("on", "off"), default="off", help="TETHER_WORKFLOW_SANDBOX"
    )
    args = parser.parse_args()
    out: list[str] = []
    async with throwaway_stack() as stack:
        if not args.skip_rated:
            out += await rated_phase(stack, args)
        if args.workers:
            out += await scale_phase(stack, args)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    run_and_exit(main())
