"""Benchmark: the founder's read commands, as a new process each, against PostgreSQL holding
1,000 tasks and 200 inbox items and 100 open sessions on a Temporal dev server with a worker
process (issue 18's goal: `tether task list`, `tether inbox` and `tether status` p50 <= 300 ms;
all three read PostgreSQL alone, the sessions keeping their figures in their rows).
Baselines from the same run, interleaved round by round: `python -c pass` (the interpreter
alone) and `python -c "import temporalio.client"` (what the commands used to pay before anything
else).

    .venv/bin/python scripts/bench_cockpit.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.throwaway import throwaway_stack, worker_processes  # noqa: E402
from tether import client as api  # noqa: E402
from tether.contracts import (  # noqa: E402
    InboxItem,
    SessionInput,
    ShellCheck,
    TaskSpec,
    TaskState,
    TaskView,
)
from tether.ops.runtime import run_and_exit  # noqa: E402
from tether.store import Store, connect_pool, migrate  # noqa: E402

TASKS = 1000
ITEMS = 200
SESSIONS = 100
# The first run validates tether.toml and verifies the raises, then keeps the verdicts under
# TETHER_HOME: the p50 is of the runs after it.
WITH_BUDGETS = "tether status, [budget] set"


async def fill(url: str) -> None:
    pool = await connect_pool(url)
    try:
        await migrate(pool)
        store = Store(pool)
        now = datetime.now(UTC)
        for n in range(TASKS):
            spec = TaskSpec(id=f"task-{n}", title=f"Task {n}", checks=[ShellCheck(command="true")])
            state = TaskState.CLAIMED if n % 3 else TaskState.OPEN
            view = TaskView(spec=spec, state=state, assignee=f"agent-{n % 100}" if n % 3 else None)
            view.created_at = view.updated_at = now
            await store.record(view, [])
        for n in range(ITEMS):
            await store.post_inbox(
                InboxItem(key=f"k{n}", kind="overlap", subject=f"agent-{n}", title=f"item {n}")
            )
    finally:
        await pool.close()


async def every_session_shown(py: str, env: dict[str, str]) -> None:
    for _ in range(100):
        proc = await asyncio.create_subprocess_exec(
            py, "-m", "tether.cli", "status", "--json", env=env, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        agents = json.loads(out)["agents"]
        if sum(1 for a in agents if a["figures_at"] and a["session"] == "active") == SESSIONS:
            return
        await asyncio.sleep(0.3)
    raise SystemExit(f"the status does not show the {SESSIONS} sessions' figures")


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


async def measure(rounds: int) -> dict[str, list[float]]:
    """The commands against a stack with the tasks and inbox items in PostgreSQL and SESSIONS
    open sessions (a worker process answers `tether status`'s live queries)."""
    async with throwaway_stack() as stack:
        await fill(stack.database_url)
        queue = "cockpit"
        agents = [f"agent-{n}" for n in range(SESSIONS)]
        config = "".join(f'[[agents]]\nname = "{a}"\n' for a in agents)
        async with worker_processes(stack, queue, config=config):
            for n in range(0, SESSIONS, 20):
                await asyncio.gather(
                    *(
                        api.start_session(stack.client, queue, SessionInput(agent=a, runtime="sdk"))
                        for a in agents[n : n + 20]
                    )
                )
            env = stack.worker_env(queue)
            # The same team with hard budgets: the status then reads them (the validated config
            # and the founder's signed raises).
            budgeted = stack.folder / "budgeted.toml"
            budgeted.write_text(f"[budget]\nagent_daily_usd = 50.0\n\n{config}")
            budget_env = {**env, "TETHER_CONFIG": str(budgeted)}
            py = sys.executable
            runs = {
                "python -c pass": [py, "-c", "pass"],
                "import temporalio.client": [py, "-c", "import temporalio.client"],
                "tether task list --json": [py, "-m", "tether.cli", "task", "list", "--json"],
                "tether inbox --json": [py, "-m", "tether.cli", "inbox", "--json"],
                "tether status": [py, "-m", "tether.cli", "status"],
            }
            # What is timed answers in full: every open session with the figures it keeps.
            await every_session_shown(py, env)
            times: dict[str, list[float]] = {k: [] for k in runs}
            times[WITH_BUDGETS] = []
            for _ in range(rounds):
                for name, argv in runs.items():
                    times[name].append(await asyncio.to_thread(timed, argv, env))
                status = runs["tether status"]
                times[WITH_BUDGETS].append(await asyncio.to_thread(timed, status, budget_env))
    return times


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    times = await measure(rounds)
    base = statistics.median(times["python -c pass"])
    print(
        f"The founder's read commands ({TASKS} tasks, {ITEMS} inbox items, {SESSIONS} open "
        f"sessions; {rounds} rounds, p50):"
    )
    for name, found in times.items():
        p50 = statistics.median(found)
        print(f"  {name:<28} {p50 * 1000:7.0f} ms   {p50 / base:5.1f}x the interpreter alone")
    for name in ("tether task list --json", "tether inbox --json", "tether status", WITH_BUDGETS):
        p50 = statistics.median(times[name]) * 1000
        print(f"  goal {name} <= 300 ms: {'met' if p50 <= 300 else 'NOT met'} ({p50:.0f} ms)")
    return 0


if __name__ == "__main__":
    run_and_exit(main())
