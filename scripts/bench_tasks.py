"""Benchmark: the task lifecycle against a bare workflow doing the same client round trips, on
the same server and worker process, in the same run.

Tether: `create_task` (update-with-start), `claim_task`, `submit_task` with one check
(`shell: true`), exactly as `tether task create|claim|submit` send them, to a worker process
started as users start one (`worker.py`: seals, the guard, the sandbox, the read model). Bare: a
workflow started the same way (update-with-start of a no-op) that takes two more updates (a
no-op, one that runs an activity spawning `true`), in a worker process of its own with no
interceptor and no sandbox (scripts/bare_worker.py). The client is this process.
Rounds alternate so drift hits both alike. Prints tasks/s at each concurrency and the ratio, how
far the read model lagged the workflow (p50/p99 of the time from the submit's answer until
PostgreSQL says done), and checks every task's events arrived, in order, once.

    .venv/bin/python scripts/bench_tasks.py [--tasks 60] [--concurrency 1,20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client, WithStartWorkflowOperation  # noqa: E402
from temporalio.common import WorkflowIDConflictPolicy  # noqa: E402

from scripts.bare_worker import BareTask  # noqa: E402
from scripts.throwaway import processes, throwaway_stack, worker_processes  # noqa: E402
from tether import client as api  # noqa: E402
from tether.contracts import ShellCheck, TaskSpec, TaskState  # noqa: E402
from tether.ops.runtime import run_and_exit  # noqa: E402

# Per step, per side: seconds (the step's share of a lifecycle, at concurrency 1).
STEPS: dict[tuple[str, str], list[float]] = {}


class _Step:
    def __init__(self, side: str) -> None:
        self.side = side
        self.t = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        STEPS.setdefault((self.side, name), []).append(now - self.t)
        self.t = now


async def bare_lifecycle(client: Client, queue: str, n: int, ids: list[str] | None = None) -> None:
    step = _Step("bare")
    start = WithStartWorkflowOperation(
        BareTask.run,
        "spec",
        id=f"bare-{uuid.uuid4().hex[:10]}-{n}",
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    await client.execute_update_with_start_workflow(BareTask.sync, start_workflow_operation=start)
    handle = await start.workflow_handle()
    if ids is not None:
        ids.append(handle.id)
    step("create")
    await handle.execute_update(BareTask.claim, "bench")
    step("claim")
    assert await handle.execute_update(BareTask.submit, "bench")
    step("submit")


async def tether_lifecycle(
    client: Client,
    queue: str,
    task_id: str,
    done: dict[str, float],
    side: str = "tether",
    ids: list[str] | None = None,
) -> None:
    step = _Step(side)
    if ids is not None:
        ids.append(f"task-{task_id}")
    spec = TaskSpec(id=task_id, title=task_id, checks=[ShellCheck(command="true")])
    await api.create_task(client, queue, spec)
    step("create")
    await api.claim_task(client, task_id, "bench")
    step("claim")
    result = await api.submit_task(client, task_id, "bench", None)
    step("submit")
    assert result.done, result
    done[task_id] = time.perf_counter()


async def wave(concurrency: int, total: int, one: object) -> float:
    """Run `total` lifecycles, `concurrency` at a time; tasks per second."""
    sem = asyncio.Semaphore(concurrency)

    async def bounded(n: int) -> None:
        async with sem:
            await one(n)  # type: ignore[operator]

    t0 = time.perf_counter()
    await asyncio.gather(*(bounded(n) for n in range(total)))
    return total / (time.perf_counter() - t0)


async def watch_read_model(store: object, done: dict[str, float], lags: list[float]) -> None:
    """How long after the submit's answer PostgreSQL says done, polled every 5 ms."""
    seen: set[str] = set()
    while True:
        waiting = [t for t in done if t not in seen]
        if waiting:
            rows = await store.pool.fetch(  # type: ignore[attr-defined]
                "SELECT id FROM tasks WHERE id = ANY($1) AND state = 'done'", waiting
            )
            now = time.perf_counter()
            for r in rows:
                seen.add(r["id"])
                lags.append(max(0.0, now - done[r["id"]]))
        await asyncio.sleep(0.005)


async def dispatch_gaps(client: Client, ids: list[str]) -> list[float]:
    """Per lifecycle: from the check activity's completion to the start of the workflow task
    that answers the submit (Temporal's dispatch of that task to the worker), seconds."""
    completed, started = (
        EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    )
    gaps = []
    for workflow_id in ids:
        events = [e async for e in client.get_workflow_handle(workflow_id).fetch_history_events()]
        at = next(i for i, e in enumerate(events) if e.event_type == completed)
        picked = next(e for e in events[at:] if e.event_type == started)
        gap = picked.event_time.ToMicroseconds() - events[at].event_time.ToMicroseconds()
        gaps.append(gap / 1e6)
    return gaps


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


SIDES = ("bare", "tether", "sandboxed")


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=60, help="lifecycles per round and side")
    parser.add_argument("--concurrency", default="1,20")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    async with throwaway_stack() as stack:
        client = stack.client
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        queues = {side: f"{queue}-{side}" for side in SIDES}
        bare = Client(**{**client.config(), "interceptors": []})
        rates: dict[tuple[str, int], list[float]] = {}
        # CPU ms per lifecycle, per side and kind of process (at the highest concurrency).
        cpu: dict[str, dict[str, float]] = {side: {} for side in SIDES}
        done: dict[str, float] = {}
        lags: list[float] = []
        # The workflows run one at a time, per side: where a submit's time goes.
        alone: dict[str, list[str]] = {side: [] for side in SIDES}
        agents = '[[agents]]\nname = "bench"\n'
        async with (
            worker_processes(stack, queues["tether"], config=agents) as (ours,),
            worker_processes(
                stack, queues["sandboxed"], config=agents, TETHER_WORKFLOW_SANDBOX="on"
            ) as (boxed,),
            worker_processes(stack, queues["bare"], bare=True) as (theirs,),
        ):
            labels = {ours.pid: "worker", boxed.pid: "worker", theirs.pid: "worker"}
            watcher = asyncio.create_task(watch_read_model(stack.store, done, lags))
            for r in range(args.rounds):
                for c in levels:
                    prefix = f"t{r}c{c}-{uuid.uuid4().hex[:6]}"
                    one: dict[str, list[str] | None] = {
                        side: alone[side] if c == 1 else None for side in SIDES
                    }
                    sides = {
                        "bare": lambda n, i=one["bare"]: bare_lifecycle(bare, queues["bare"], n, i),
                        "tether": lambda n, p=prefix, i=one["tether"]: tether_lifecycle(
                            client, queues["tether"], f"{p}-{n}", done, ids=i
                        ),
                        "sandboxed": lambda n, p=prefix, i=one["sandboxed"]: tether_lifecycle(
                            client, queues["sandboxed"], f"{p}-s{n}", done, "sandboxed", i
                        ),
                    }
                    for side, one in sides.items():
                        before = processes(labels)
                        rates.setdefault((side, c), []).append(await wave(c, args.tasks, one))
                        if c == max(levels):
                            for kind, (used, _) in processes(labels).items():
                                spent = (used - before.get(kind, (0.0, 0))[0]) * 1000 / args.tasks
                                cpu[side][kind] = cpu[side].get(kind, 0.0) + spent / args.rounds
            deadline = time.perf_counter() + 60
            while len(lags) < len(done) and time.perf_counter() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            watcher.cancel()
            rows = await stack.store.pool.fetch(
                """SELECT t.id, t.state, array_agg(e.kind ORDER BY e.seq) AS kinds,
                          array_agg(e.seq ORDER BY e.seq) AS seqs
                   FROM tasks t JOIN task_events e ON e.task_id = t.id
                   WHERE t.id = ANY($1) GROUP BY t.id, t.state""",
                list(done),
            )
            expected = ["created", "claimed", "submitted", "verified"]
            wrong = [
                r["id"]
                for r in rows
                if r["state"] != TaskState.DONE
                or list(r["kinds"]) != expected
                or list(r["seqs"]) != [1, 2, 3, 4]
            ]
            missing = sorted(set(done) - {r["id"] for r in rows})
            # History events per lifecycle, and which: what the server stores for each side.
            events: dict[str, collections.Counter[str]] = {}
            for side in ("bare", "tether"):
                counted = events.setdefault(side, collections.Counter())
                query = f"TaskQueue = '{queues[side]}' AND WorkflowType != 'NoopWorkflow'"
                runs = [w async for w in client.list_workflows(query, limit=20)]
                for w in runs:
                    handle = client.get_workflow_handle(w.id, run_id=w.run_id)
                    async for e in handle.fetch_history_events():
                        counted[EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")] += 1
                for k in counted:
                    counted[k] = counted[k] // max(1, len(runs))
            gaps = {side: await dispatch_gaps(client, alone[side]) for side in SIDES}
    print(
        f"task lifecycle (create, claim, submit with one `true` check): {args.tasks} per round "
        f"and side, {args.rounds} rounds; tether: a worker as configured by default, "
        "sandboxed: with TETHER_WORKFLOW_SANDBOX=on"
    )
    print(f"{'concurrency':>12} {'bare':>9} {'tether':>9} {'sandboxed':>10}   tasks/s, ratios")
    for c in levels:
        b, t, x = (statistics.median(rates[(side, c)]) for side in SIDES)
        print(f"{c:>12} {b:9.1f} {t:9.1f} {x:10.1f}   {t / b:.2f}, {x / b:.2f}  (goal >= 0.80)")
    print(f"CPU ms per lifecycle at concurrency {max(levels)} (where the time goes):")
    for kind in sorted({k for side in SIDES for k in cpu[side]}):
        b, t, x = (cpu[side].get(kind, 0.0) for side in SIDES)
        print(f"{kind:>12} {b:9.1f} {t:9.1f} {x:10.1f}")
    print("history events per lifecycle (bare, tether):")
    for kind in sorted(set(events["bare"]) | set(events["tether"])):
        print(f"  {kind:<40} {events['bare'][kind]:>4} {events['tether'][kind]:>6}")
    print(f"  {'total':<40} {sum(events['bare'].values()):>4} {sum(events['tether'].values()):>6}")
    if 1 in levels:
        print("per step at concurrency 1, p50 ms:")
        for name in ("create", "claim", "submit"):
            b, t, x = (
                statistics.median(STEPS[(side, name)][: args.tasks]) * 1000 for side in SIDES
            )
            print(f"{name:>12} {b:9.1f} {t:9.1f} {x:10.1f}")
        print("in submit: the check's completion -> the answering workflow task started, ms")
        for label, q in (("p50", 0.5), ("p90", 0.9)):
            b, t, x = (pct(gaps[side], q) * 1000 for side in SIDES)
            print(f"{label:>12} {b:9.1f} {t:9.1f} {x:10.1f}")
        b, t, x = (sum(g < 0.01 for g in gaps[side]) / max(1, len(gaps[side])) for side in SIDES)
        print(f"{'under 10 ms':>12} {b:9.0%} {t:9.0%} {x:10.0%}")
    print(
        f"read model behind the workflow (submit answered -> row done): p50 "
        f"{pct(lags, 0.5) * 1000:.0f} ms, p99 {pct(lags, 0.99) * 1000:.0f} ms, "
        f"max {max(lags, default=float('nan')) * 1000:.0f} ms over {len(lags)} tasks"
    )
    print(
        f"events in PostgreSQL: {len(rows)} of {len(done)} tasks, {len(wrong)} with events "
        f"missing, duplicated or out of order, {len(missing)} missing"
    )
    return 1 if wrong or missing else 0


if __name__ == "__main__":
    run_and_exit(main())
