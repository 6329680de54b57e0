"""Benchmark: a worker process's memory with open work, and what the bounded workflow cache costs.

For each worker configuration asked (cache size and sandbox; the SDK's default cache of 1,000
with the sandbox first, as the baseline: the worker before issue 18), starts its own Temporal dev
server and PostgreSQL and one worker process (`worker.py`, as users start it); opens 100 agents'
sessions (each with a few reports) and 1,000 tasks (100 of them claimed); prints the worker's
resident memory (VmRSS and its peak), then the p50/p99 of querying a task the worker last
touched long ago (evicted when the cache is smaller than the open work: replayed from its
history) against querying it again (cached).

    .venv/bin/python scripts/bench_memory.py [--tasks 1000] [--sessions 100] [--workers ...]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.throwaway import throwaway_stack, worker_processes  # noqa: E402
from tether import client as api  # noqa: E402
from tether.client.connection import sealed  # noqa: E402
from tether.contracts import Report, SessionInput, ShellCheck, TaskSpec  # noqa: E402
from tether.ops.runtime import run_and_exit  # noqa: E402
from tether.trust import seals  # noqa: E402


def memory(pid: int) -> tuple[float, float]:
    """(resident, peak resident) MB of a process."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def in_batches(calls: list, width: int = 20) -> None:  # type: ignore[type-arg]
    for i in range(0, len(calls), width):
        await asyncio.gather(*(c() for c in calls[i : i + width]))


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


async def one_size(
    stack: object, cache: int, sandbox: str, tasks: int, sessions: int
) -> dict[str, float]:
    client = stack.client  # type: ignore[attr-defined]
    gateway = sealed(client, stack.gateway)  # type: ignore[attr-defined]
    queue = f"mem-{uuid.uuid4().hex[:8]}"
    agents = [f"agent-{i:03d}" for i in range(sessions)]
    config = "".join(f'[[agents]]\nname = "{a}"\n' for a in agents)
    async with worker_processes(
        stack,  # type: ignore[arg-type]
        queue,
        config=config,
        TETHER_WORKFLOW_CACHE=str(cache),
        TETHER_WORKFLOW_SANDBOX=sandbox,
    ) as (worker,):
        rss0, _ = memory(worker.pid)

        async def open_session(agent: str) -> None:
            await api.start_session(client, queue, SessionInput(agent=agent, runtime="sdk"))
            for n in range(5):
                with seals.speaking(agent):
                    await api.report(
                        gateway, agent, Report(context_tokens=10_000 + n, cost_usd=0.01)
                    )

        await in_batches([lambda a=a: open_session(a) for a in agents])
        prefix = uuid.uuid4().hex[:6]
        ids = [f"{prefix}-{n}" for n in range(tasks)]

        async def open_task(n: int) -> None:
            spec = TaskSpec(id=ids[n], title=ids[n], checks=[ShellCheck(command="true")])
            await api.create_task(client, queue, spec)
            if n < sessions:
                with seals.speaking(agents[n]):
                    await api.claim_task(sealed(client, stack.gateway), ids[n], agents[n])  # type: ignore[attr-defined]

        await in_batches([lambda n=n: open_task(n) for n in range(tasks)])
        await asyncio.sleep(2)
        rss, peak = memory(worker.pid)
        # Queries of tasks touched long ago (evicted when the cache is smaller than the open
        # work: replayed) against a query of the task just touched (cached).
        cold: list[float] = []
        warm: list[float] = []
        for n in range(sessions, min(tasks, sessions + 40)):
            t0 = time.perf_counter()
            await api.get_view(client, ids[n])
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await api.get_view(client, ids[n])
            warm.append(time.perf_counter() - t0)
        rss_after, peak = memory(worker.pid)
    return {
        "idle": rss0,
        "rss": rss,
        "peak": peak,
        "after": rss_after,
        "cold50": statistics.median(cold) * 1000,
        "cold99": pct(cold, 0.99),
        "warm50": statistics.median(warm) * 1000,
        "warm99": pct(warm, 0.99),
    }


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument(
        "--workers",
        default="1000/on,1000/off,200/on,200/off",
        help="CACHE/SANDBOX per row; 1000/on is the worker before issue 18 (the SDK's default)",
    )
    args = parser.parse_args()
    results = {}
    for row in args.workers.split(","):
        cache, _, sandbox = row.partition("/")
        # A stack of its own per row: nothing one worker left behind weighs on the next.
        async with throwaway_stack() as stack:
            results[row] = await one_size(stack, int(cache), sandbox, args.tasks, args.sessions)
    print(
        f"worker process with {args.tasks} open tasks ({args.sessions} claimed) and "
        f"{args.sessions} open sessions, per TETHER_WORKFLOW_CACHE / TETHER_WORKFLOW_SANDBOX"
    )
    print(
        f"{'worker':>9} {'idle MB':>8} {'open MB':>8} {'peak MB':>8} "
        f"{'query evicted p50/p99 ms':>25} {'query cached p50/p99 ms':>24}"
    )
    for row, r in results.items():
        print(
            f"{row:>9} {r['idle']:8.0f} {r['rss']:8.0f} {r['peak']:8.0f} "
            f"{r['cold50']:15.1f} / {r['cold99']:6.1f} {r['warm50']:14.1f} / {r['warm99']:6.1f}"
        )
    print("goal: <= 300 MB with 1,000 open tasks and 100 open sessions (default: 200/off)")
    return 0


if __name__ == "__main__":
    run_and_exit(main())
