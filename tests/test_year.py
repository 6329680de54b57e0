"""The founder's reads at a year's record (issue 31): written through the store's own functions
from templates a run through Tether's own paths left, a year of an eleven-agent team's tasks,
sessions, inbox items and deployments, every read the cockpit and the CLI make is read from an
index and bounded by a window or a page: no sequential scan of a table that grows with the year,
and no step of any plan that reads more rows than a window holds."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.support.plans import Explaining, Plan
from tests.support.year import write_year
from tether.store import Store, connect_pool, migrate, reads
from tether.store.retention import cutoff_for

ROOT = Path(__file__).resolve().parent.parent
DAYS = 365
# A year of tasks, sessions, deployments and inbox items at the seed's rates; the tool-call log
# at a tenth of its rate (300,000 rows rather than 3 million: the lookups by task and agent are
# the same plan at either size, and the suite stays inside CI's time; scripts/bench_year.py
# writes the whole log).
RATES = {"tool_calls": 820}
# The most rows any step may read: a week of tasks is 1,540, a month of ended sessions 3,300.
WINDOW_ROWS = 10_000


@pytest.fixture(scope="module")
async def year_db(database_url: str) -> Any:
    """One database holding a year, shared by this module's tests (writing it takes a minute)."""
    name = f"year_{int(time.time())}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{database_url.rpartition('/')[0]}/{name}"
    pool = await connect_pool(url)
    try:
        await migrate(pool)
        store = Store(pool)
        first = await write_year(store, DAYS, RATES)
        await pool.execute("ANALYZE")
        yield url, store, first
    finally:
        await pool.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def _checked(conn: asyncpg.Connection, plans: list[Plan]) -> list[str]:
    """What each plan did that grows with the year: a whole scan of a table holding more rows
    than a window (a small table, like the inbox or an empty rollup, is rightly scanned), or a
    step that reads more rows than a window holds."""
    rows = await conn.fetch("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r'")
    size = {r["relname"]: r["reltuples"] for r in rows}
    problems = []
    for plan in plans:
        scanned = sorted(t for t in set(plan.seq_scans()) if size.get(t, 0) > WINDOW_ROWS)
        if scanned:
            problems.append(f"scans {scanned} whole: {plan.sql[:160]}")
        if plan.rows_read() > WINDOW_ROWS:
            problems.append(f"reads {plan.rows_read()} rows in one step: {plan.sql[:160]}")
    return problems


async def test_every_founders_read_stays_on_an_index_and_a_window_at_a_years_size(
    year_db: Any,
) -> None:
    url, store, first = year_db
    sizes = {
        table: await store.pool.fetchval(f"SELECT count(*) FROM {table}")
        for table in ("tasks", "task_events", "sessions", "tool_calls", "inbox", "deployments")
    }
    assert sizes["tasks"] == 220 * DAYS and sizes["sessions"] == 110 * DAYS
    # The last ninety days of the log are there whether the prune below ran first or not.
    assert sizes["tool_calls"] >= 700 * 90 and sizes["deployments"] >= DAYS

    conn = await asyncpg.connect(url)
    await reads.init_connection(conn)
    try:
        db = Explaining(conn)
        # `tether status` (and the cockpit's status page): every query it makes.
        status = await reads.status_rows(db, datetime.now(UTC) - timedelta(days=7))
        # `tether task list`: the first page, one state, one agent, the next page, since.
        page = await reads.task_rows(db, limit=51)
        await reads.task_rows(db, "done", limit=51)
        await reads.task_rows(db, None, "coder-1", limit=51)
        await reads.task_rows(db, before=reads.parse_task_cursor(reads.task_cursor(page[-1])))
        await reads.task_rows(db, since=datetime.now(UTC) - timedelta(days=30), limit=51)
        # `tether inbox`, open and all, and a next page.
        await reads.inbox_rows(db, limit=101)
        items = await reads.inbox_rows(db, True, limit=101)
        await reads.inbox_rows(db, True, limit=101, before=items[-1]["id"])
        # Budgets: today's spend per agent, the month's for the team.
        await reads.spend_per_agent(db, date.today())
        await reads.budget_spend(db, "coder-1", date.today())
        await reads.budget_spend(db, None, date.today())
        # `tether task show` of the year's first task (closed eleven months and more ago):
        # the task, its history and its ledger; and what a session's brief and its deliverable
        # check read, and the cost governor's baseline.
        explained = Store(db)  # type: ignore[arg-type]
        oldest = f"y{first:%Y%m%d}-0000"
        record = await explained.get_task(oldest)
        assert record is not None and record.events and record.ledger is not None
        assert record.ledger.tool_calls > 0
        await explained.brief_tasks("coder-1", [], 10, 10)
        await explained.held_or_done_since("coder-1", datetime.now(UTC) - timedelta(days=1))
        await explained.completed_task_costs(None, 20)
        await explained.list_sessions("coder-1")
        problems = await _checked(conn, db.plans)
    finally:
        await conn.close()
    assert not problems, "\n".join(problems)
    # What the status lists is a week's work, not the year's.
    assert 0 < len(status["tasks"]) <= 7 * 220 + 220
    assert len(status["sessions"]) == 11
    assert len(db.plans) >= 25


async def test_a_prune_at_a_years_size_keeps_what_task_show_answers(year_db: Any) -> None:
    _, store, first = year_db
    oldest = f"y{first:%Y%m%d}-0000"
    before = await store.get_task(oldest)
    calls = await store.pool.fetchval("SELECT count(*) FROM tool_calls")
    report = await store.prune(cutoff_for(90), apply=True, by="founder")
    rolled = {p.table: p for p in report.parts}
    # Nine months of the log went into its rollup; the last ninety days stay as they are.
    assert rolled["tool_calls"].rows > calls * 0.7 and rolled["tool_calls"].rollup_rows > 0
    assert await store.pool.fetchval("SELECT count(*) FROM tool_calls") == (
        calls - rolled["tool_calls"].rows
    )
    after = await store.get_task(oldest)
    assert before is not None and after is not None
    assert after.ledger == before.ledger and after.events == before.events


async def test_the_generator_writes_a_month_stops_and_resumes_where_it_stopped(
    fresh_db: str, tmp_path: Path
) -> None:
    """scripts/year.py --size month into a given database: stopped part way (killed), run
    again, it goes on after the last day it finished, and every day is there once."""
    argv = [
        sys.executable,
        str(ROOT / "scripts" / "year.py"),
        "--size",
        "month",
        "--scale",
        "0.1",
        "--database-url",
        fresh_db,
        "--home",
        str(tmp_path / "month"),
    ]
    progress = tmp_path / "month" / "progress.json"
    first = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    while not (progress.exists() and len(json.loads(progress.read_text() or "{}")) >= 5):
        assert first.returncode is None, (await first.communicate())[1].decode()[-2000:]
        await asyncio.sleep(0.05)
    first.kill()
    await first.wait()
    stopped_at = len(json.loads(progress.read_text()))
    assert stopped_at < 30

    again = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(again.communicate(), 300)
    assert again.returncode == 0, err.decode()[-2000:]
    assert "done: 30 days" in out.decode()
    days = json.loads(progress.read_text())
    assert len(days) == 30
    conn = await asyncpg.connect(fresh_db)
    try:
        per_day = await conn.fetch(
            """SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
               FROM tasks GROUP BY 1 ORDER BY 1"""
        )
        # A tenth of the team's 220 tasks a day, every one of the thirty days, none twice.
        assert [r["n"] for r in per_day] == [22] * 30
        assert len(per_day) == 30
        assert await conn.fetchval("SELECT count(*) FROM sessions") == 11 * 30
    finally:
        await conn.close()
