"""Benchmark: one tool-call report through the session workflow's governors, sealed by the
gateway's key and checked in the workflow, against a no-op update on the same server, in the
same run.

Starts its own Temporal dev server (default dynamic config, so continue-as-new comes when
Temporal really suggests it), PostgreSQL and worker; opens a session; then, alternating in
rounds so drift hits all alike, sends N reports (a tool call with context and spend, one in
seven failing; sealed for the agent, as the gateway sends them), N bare no-op updates to a
trivial workflow, and N sealed no-op updates to the same trivial workflow behind the seal
check (the signature's own cost: sealing in the client, verifying in the workflow). Prints
p50/p99 of each, the ratios to the bare no-op, and the history events per reported tool call.

    .venv/bin/python scripts/bench_governor.py [--reports 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from scripts.bare_worker import NoopWorkflow  # noqa: E402
from scripts.throwaway import throwaway_stack  # noqa: E402
from tether import client as api  # noqa: E402
from tether import constants  # noqa: E402
from tether.client.connection import sealed  # noqa: E402
from tether.config import TetherConfig  # noqa: E402
from tether.contracts import Report, SessionInput, ToolCall  # noqa: E402
from tether.ops.runtime import run_and_exit  # noqa: E402
from tether.trust import seals  # noqa: E402
from worker import build_worker  # noqa: E402
from workflows.guard import MessageGuard  # noqa: E402


def figures(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def report(n: int) -> Report:
    ok = n % 7 != 0
    call = ToolCall(
        tool="Bash",
        ok=ok,
        action="Bash:pytest",
        signature="" if ok else f"1|AssertionError|assert # == # (case {n % 3})",
        input_digest=f"{n:x}",
        output_digest=f"{n:x}",
    )
    return Report(tool_call=call, context_tokens=20_000 + n * 20, cost_usd=0.0005)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=1000)
    total = parser.parse_args().reports
    async with throwaway_stack() as stack:
        client = stack.client
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        config = TetherConfig.model_validate({"agents": [{"name": "bench"}]})
        noop_queue = f"{queue}-noop"
        sealed_queue = f"{queue}-sealed"
        trust, _ = stack.keys
        bare = Client(**{**client.config(), "interceptors": []})
        gateway = sealed(client, stack.gateway)
        async with (
            build_worker(client, queue, stack.store, config, stack.keys),
            Worker(
                bare,
                task_queue=noop_queue,
                workflows=[NoopWorkflow],
                workflow_runner=UnsandboxedWorkflowRunner(),
            ),
            Worker(
                bare,
                task_queue=sealed_queue,
                workflows=[NoopWorkflow],
                interceptors=[MessageGuard(trust)],
                workflow_runner=UnsandboxedWorkflowRunner(),
            ),
        ):
            await api.start_session(client, queue, SessionInput(agent="bench", runtime="sdk"))
            noop = await bare.start_workflow(
                NoopWorkflow.run, id=f"noop-{uuid.uuid4().hex[:8]}", task_queue=noop_queue
            )
            # Behind the seal check: a workflow Tether does not know takes the founder's seal.
            guarded = await client.start_workflow(
                NoopWorkflow.run, id=f"sealed-{uuid.uuid4().hex[:8]}", task_queue=sealed_queue
            )
            reports: list[float] = []
            noops: list[float] = []
            sealed_noops: list[float] = []
            rounds = 20
            for r in range(rounds):
                per = total // rounds
                for i in range(per):
                    t0 = time.perf_counter()
                    await noop.execute_update(NoopWorkflow.noop, i)
                    noops.append(time.perf_counter() - t0)
                for i in range(per):
                    t0 = time.perf_counter()
                    await guarded.execute_update(NoopWorkflow.noop, i)
                    sealed_noops.append(time.perf_counter() - t0)
                for i in range(per):
                    n = r * per + i + 1
                    t0 = time.perf_counter()
                    with seals.speaking("bench"):
                        await api.report(gateway, "bench", report(n))
                    reports.append(time.perf_counter() - t0)
            view = await api.session_view(client, "bench")
            assert view is not None and view.governor.reports == len(reports)
            handle = client.get_workflow_handle(constants.session_workflow_id("bench"))
            events = 0
            runs = 0
            async for run in client.list_workflows(
                f"WorkflowId = '{constants.session_workflow_id('bench')}'"
            ):
                runs += 1
                history = client.get_workflow_handle(run.id, run_id=run.run_id)
                events += sum([1 async for _ in history.fetch_history_events()])
            del handle
            noop_events = sum([1 async for _ in noop.fetch_history_events()])
            await noop.terminate()
            await api.end_session(client, "bench", "benchmark done", "bench")

    r50, r99 = figures(reports)
    n50, n99 = figures(noops)
    s50, s99 = figures(sealed_noops)
    print(f"reports: {len(reports)} (one in seven failing), no-op updates: {len(noops)} each")
    print(f"{'':40} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'no-op update (baseline)':40} {n50:8.2f} {n99:8.2f}")
    print(f"{'sealed no-op update (seal check only)':40} {s50:8.2f} {s99:8.2f}")
    print(f"{'sealed tool-call report (governors)':40} {r50:8.2f} {r99:8.2f}")
    print(f"ratio sealed no-op / no-op: p50 {s50 / n50:.2f}, p99 {s99 / n99:.2f}")
    print(
        f"ratio sealed report / no-op: p50 {r50 / n50:.2f}, p99 {r99 / n99:.2f}  "
        "(goal <= 1.5 at p50 and p99)"
    )
    print(
        f"history: {events} events over {runs} run(s) = {events / len(reports):.2f} per report "
        f"(the no-op workflow: {noop_events / len(noops):.2f} per update)"
    )
    return 0


if __name__ == "__main__":
    run_and_exit(main())
