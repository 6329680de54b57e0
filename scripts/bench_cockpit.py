"""Benchmark: the founder's read-only commands, as a new process each, against PostgreSQL holding
1,000 tasks and 200 inbox items (issue 18's goal: `tether task list` and `tether inbox` p50
<= 300 ms). Baselines from the same run, interleaved round by round: `python -c pass` (the
interpreter alone) and `python -c "import temporalio.client"` (what the commands used to pay
before anything else).

    .venv/bin/python scripts/bench_cockpit.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from activities.store import Store, connect_pool, migrate
from tether.contracts import InboxItem, ShellCheck, TaskSpec, TaskState, TaskView
from tether.ops.stack import EmbeddedPostgres, free_port

TASKS = 1000
ITEMS = 200


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


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        pg = EmbeddedPostgres(Path(folder) / "pg", port=free_port())
        pg.start()
        try:
            asyncio.run(fill(pg.url))
            env = {**os.environ, "DATABASE_URL": pg.url, "TETHER_HOME": folder}
            py = sys.executable
            runs = {
                "python -c pass": [py, "-c", "pass"],
                "import temporalio.client": [py, "-c", "import temporalio.client"],
                "tether task list --json": [py, "-m", "tether.cli", "task", "list", "--json"],
                "tether inbox --json": [py, "-m", "tether.cli", "inbox", "--json"],
            }
            times: dict[str, list[float]] = {k: [] for k in runs}
            for _ in range(rounds):
                for name, argv in runs.items():
                    times[name].append(timed(argv, env))
        finally:
            pg.stop()
    base = statistics.median(times["python -c pass"])
    print(f"The read-only commands ({TASKS} tasks, {ITEMS} inbox items; {rounds} rounds, p50):")
    for name, found in times.items():
        p50 = statistics.median(found)
        print(f"  {name:<28} {p50 * 1000:7.0f} ms   {p50 / base:5.1f}x the interpreter alone")
    for name in ("tether task list --json", "tether inbox --json"):
        p50 = statistics.median(times[name]) * 1000
        print(f"  goal {name} <= 300 ms: {'met' if p50 <= 300 else 'NOT met'} ({p50:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
