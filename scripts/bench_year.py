"""Benchmark: Tether at a year's record against an empty one, in the same run (issue 31).

On a throwaway stack, two databases on the same PostgreSQL server: `year`, written a day at a
time through the store's own functions from templates a run through Tether's own paths left
(tests/support/year.py; every rate at the seed's: 80,000 tasks, 40,000 sessions, 3 million tool
calls, ~1,800 deployments), and `empty` (migrated, nothing in it). Measures:

- the database's size after each month written (is a month's growth the same in month twelve as
  in month one?), and per agent-year before and after `tether prune --apply` (90 days);
- `tether status`, `tether inbox`, `tether task list` and `tether task show` of the year's first
  task (closed eleven months ago), each a new process, p50 over `--rounds`, against both
  databases, beside `python -c pass` (goal: every one <= 300 ms at the year's record);
- the task lifecycle (create, claim, submit with its check, as `tether task` sends them) through
  a worker process on each database, tasks/s at concurrency 10, rounds alternating (goal: the
  year's within 1.2x of the empty one's);
- a report's cost: a session's report update round trip, and the ledger write a session's flush
  makes (20 tool calls into the log), p50 on each database (goal: within 1.2x).

    .venv/bin/python scripts/bench_year.py [--days 365] [--rounds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from scripts.bench_tasks import tether_lifecycle, wave  # noqa: E402
from scripts.throwaway import throwaway_stack, worker_processes  # noqa: E402
from tests.support.year import FIXTURE, Templates, write_year  # noqa: E402
from tether import client as api  # noqa: E402
from tether.contracts import Report, SessionInput, ToolCall, ToolCallRecord  # noqa: E402
from tether.ops.runtime import run_and_exit  # noqa: E402
from tether.store import Store, connect_pool, migrate  # noqa: E402
from tether.store.retention import cutoff_for  # noqa: E402

MIB = 2**20


async def database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{admin_url.rpartition('/')[0]}/{name}"


async def fill_year(url: str, days: int) -> list[tuple[int, float, float]]:
    """The year, oldest day first; (month, database MiB after it, seconds it took)."""
    pool = await connect_pool(url)
    growth = []
    started = time.monotonic()

    async def measured(n: int, _day: object) -> None:
        if (n + 1) % 30 == 0 or n == days - 1:
            size = await pool.fetchval("SELECT pg_database_size(current_database())")
            took = time.monotonic() - started
            growth.append(((n + 1) // 30, size / MIB, took))
            print(f"  day {n + 1}: {size / MIB:.0f} MiB, {took:.0f} s", flush=True)

    try:
        await migrate(pool)
        await write_year(Store(pool), days, after_day=measured)
        await pool.execute("VACUUM ANALYZE")
    finally:
        await pool.close()
    return growth


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


async def recent_task(year: asyncpg.Pool, empty_url: str) -> str:
    """The newest task of the year, copied into the empty database (through the store)."""
    task_id = await year.fetchval("SELECT id FROM tasks ORDER BY created_at DESC LIMIT 1")
    record = await Store(year).get_task(task_id)
    assert record is not None
    pool = await connect_pool(empty_url)
    try:
        await Store(pool).record(record.task, record.events)
    finally:
        await pool.close()
    return str(task_id)


async def commands(
    env_of: dict[str, dict[str, str]], oldest: str, today: str, rounds: int
) -> dict[str, list[float]]:
    py = sys.executable
    runs = {
        "python -c pass": [py, "-c", "pass"],
        "tether status": [py, "-m", "tether.cli", "status"],
        "tether inbox": [py, "-m", "tether.cli", "inbox"],
        "tether task list": [py, "-m", "tether.cli", "task", "list"],
        "tether task show (first task)": [py, "-m", "tether.cli", "task", "show", oldest],
        "tether task show (today's task)": [py, "-m", "tether.cli", "task", "show", today],
    }
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for side, env in env_of.items():
            for name, argv in runs.items():
                if side == "empty" and name.startswith("tether task show"):
                    continue
                key = f"{name} [{side}]"
                times.setdefault(key, []).append(await asyncio.to_thread(timed, argv, env))
    return times


async def ledger_writes(urls: dict[str, str], rounds: int, run: str) -> dict[str, list[float]]:
    """A session's flush: 20 tool calls into the log, on each database, alternating."""
    found: dict[str, list[float]] = {}
    stores = {side: Store(await connect_pool(url)) for side, url in urls.items()}
    try:
        for r in range(rounds):
            for side, store in stores.items():
                calls = [
                    ToolCallRecord(
                        seq=r * 20 + i + 1,
                        at=datetime.now(UTC),
                        task_id=f"flush-{r}",
                        call=ToolCall(tool="Bash", ok=True, action=f"make step {r}"),
                    )
                    for i in range(20)
                ]
                t0 = time.perf_counter()
                await store.record_tool_calls("flush", f"flush-{run}-{side}:{r // 50}", calls)
                found.setdefault(f"ledger write of 20 calls [{side}]", []).append(
                    time.perf_counter() - t0
                )
    finally:
        for store in stores.values():
            await store.pool.close()
    return found


async def report_rounds(
    stack: object, queues: dict[str, str], rounds: int
) -> dict[str, list[float]]:
    """A report's round trip to a session on each side's worker, alternating."""
    client = stack.client  # type: ignore[attr-defined]
    found: dict[str, list[float]] = {}
    for side, queue in queues.items():
        await api.start_session(client, queue, SessionInput(agent=f"bench-{side}", runtime="sdk"))
    for r in range(rounds):
        for side in queues:
            call = ToolCall(tool="Bash", ok=True, action=f"make step {r}")
            t0 = time.perf_counter()
            await api.report(client, f"bench-{side}", Report(tool_call=call))
            found.setdefault(f"report round trip [{side}]", []).append(time.perf_counter() - t0)
    return found


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--tasks", type=int, default=40, help="lifecycles per round and side")
    args = parser.parse_args()
    async with throwaway_stack() as stack:
        suffix = uuid.uuid4().hex[:6]
        urls = {
            "year": await database(stack.database_url, f"year_{suffix}"),
            "empty": await database(stack.database_url, f"empty_{suffix}"),
        }
        empty = await connect_pool(urls["empty"])
        await migrate(empty)
        await empty.close()
        print(f"Writing {args.days} days of an eleven-agent team's record:", flush=True)
        growth = await fill_year(urls["year"], args.days)
        pool = await connect_pool(urls["year"])
        try:
            before = await pool.fetchval("SELECT pg_database_size(current_database())")
            tables = await pool.fetch(
                """SELECT relname, n_live_tup AS n FROM pg_stat_user_tables
                   WHERE n_live_tup > 0 ORDER BY n_live_tup DESC"""
            )
            first = (datetime.now(UTC).date() - timedelta(days=args.days)).strftime("%Y%m%d")
            oldest = f"y{first}-0000"
            # The team's tether.toml (a TETHER_CONFIG naming no file makes `status` read the
            # whole configuration to say so).
            team = "".join(f'[[agents]]\nname = "{a}"\n' for a in Templates.load(FIXTURE).agents())
            (stack.folder / "tether.toml").write_text(team)
            envs = {
                side: stack.worker_env("unused", DATABASE_URL=url) for side, url in urls.items()
            }
            # A task from today on each side, for `task show` of a task just closed.
            today = await recent_task(pool, urls["empty"])
            times = await commands(envs, oldest, today, args.rounds)

            # Task lifecycles and reports, through a worker process on each database.
            queues = {side: f"year-{side}-{suffix}" for side in urls}
            agents = "".join(
                f'[[agents]]\nname = "{a}"\n' for a in ("bench", "bench-year", "bench-empty")
            )
            rates: dict[str, list[float]] = {}
            async with (
                worker_processes(stack, queues["year"], config=agents, DATABASE_URL=urls["year"]),
                worker_processes(stack, queues["empty"], config=agents, DATABASE_URL=urls["empty"]),
            ):
                done: dict[str, float] = {}
                for r in range(3):
                    for side, queue in queues.items():
                        one = lambda n, q=queue, p=f"{side}{r}-{suffix}": tether_lifecycle(  # noqa: E731
                            stack.client, q, f"{p}-{n}", done
                        )
                        rates.setdefault(side, []).append(await wave(10, args.tasks, one))
                costs = await report_rounds(stack, queues, args.rounds * 4)
            costs.update(await ledger_writes(urls, args.rounds * 4, "before"))

            report = await store_prune(pool)
            await pool.execute("VACUUM ANALYZE tool_calls")
            after = await pool.fetchval("SELECT pg_database_size(current_database())")
            # The ledger write again, with the log pruned to its last 90 days (as a founder who
            # prunes keeps it), alternating with the empty database.
            pruned = await ledger_writes(urls, args.rounds * 8, "pruned")
            costs.update({f"{k} (pruned)": v for k, v in pruned.items()})
            # What a pruned year holds once its freed pages are returned (a prune leaves them
            # for new rows: the file stays, and the next months fill it first).
            await pool.execute("VACUUM FULL tool_calls")
            await pool.execute("VACUUM FULL cost_ledger")
            compact = await pool.fetchval("SELECT pg_database_size(current_database())")
            largest = await pool.fetch(
                """SELECT relname, pg_total_relation_size(relid) AS bytes FROM pg_statio_user_tables
                   ORDER BY bytes DESC LIMIT 6"""
            )
        finally:
            await pool.close()

    print()
    print(f"The database at a year's record ({args.days} days, 11 agents):")
    for name, n in [(r["relname"], r["n"]) for r in tables[:8]]:
        print(f"  {name:<16} {n:>12,} rows")
    print(
        "  growth per month (MiB):",
        ", ".join(
            f"{b - a:.0f}"
            for (_, a, _), (_, b, _) in zip([(0, 0.0, 0.0), *growth], growth, strict=False)
        ),
    )
    print(
        f"  on disk: {before / MIB:.0f} MiB before `tether prune --apply` (90 days), "
        f"{after / MIB:.0f} MiB after (PostgreSQL keeps the freed pages for new rows; "
        f"VACUUM FULL would return them); per agent-year {after / MIB / 11:.0f} MiB"
    )
    print(
        f"  a pruned year, its freed pages returned (VACUUM FULL): {compact / MIB:.0f} MiB, "
        f"{compact / MIB / 11:.0f} MiB per agent-year; the largest tables: "
        + ", ".join(f"{r['relname']} {r['bytes'] / MIB:.0f}" for r in largest)
    )
    for part in report.parts:
        print(
            f"  pruned {part.table}: {part.rows:,} rows into {part.kept_in} (+{part.rollup_rows:,})"
        )
    base = statistics.median(times["python -c pass [year]"])
    print(
        f"\nThe founder's read commands, a new process each, p50 of {args.rounds} (goal <= 300 ms):"
    )
    for name, found in times.items():
        p50 = statistics.median(found)
        goal = "" if "pass" in name else ("  met" if p50 <= 0.3 else "  NOT met")
        print(f"  {name:<40} {p50 * 1000:7.0f} ms  {p50 / base:5.1f}x the interpreter{goal}")
    y, e = statistics.median(rates["year"]), statistics.median(rates["empty"])
    print(
        f"\nTask lifecycle, concurrency 10: {y:.1f} tasks/s at a year's record, {e:.1f} empty: "
        f"{e / y:.2f}x slower (goal <= 1.2x)"
    )
    for what in (
        "report round trip",
        "ledger write of 20 calls",
        "ledger write of 20 calls (pruned)",
    ):
        key = what.replace(" (pruned)", "")
        tail = " (pruned)" if "pruned" in what else ""
        yv = statistics.median(costs[f"{key} [year]{tail}"])
        ev = statistics.median(costs[f"{key} [empty]{tail}"])
        print(
            f"{what}: {yv * 1000:.1f} ms at a year's record, {ev * 1000:.1f} ms empty: "
            f"{yv / ev:.2f}x (goal <= 1.2x)"
        )
    return 0


async def store_prune(pool: asyncpg.Pool) -> object:
    """`tether prune` at the year's record: the dry run, as the command prints it, then
    applied."""
    from tether.cli.retention import render_prune

    dry = await Store(pool).prune(cutoff_for(90), apply=False)
    print("\n$ tether prune\n" + render_prune(dry, 90, 30), flush=True)
    return await Store(pool).prune(cutoff_for(90), apply=True, by="bench")


if __name__ == "__main__":
    run_and_exit(main())
