"""A year's record kept small (issue 31): `tether prune` rolls the tool-call log and the cost
ledger older than the retention age into one row per agent, task and day, removes what the audit
chain holds, and `tether task show` and the governors' reads answer the same before and after."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from tests.support.cli import tether
from tests.support.helpers import clean_environment
from tether.contracts import (
    InboxItem,
    RefusalRecord,
    ShellCheck,
    TaskSpec,
    TaskState,
    TaskView,
    TokenUsage,
    ToolCall,
    ToolCallRecord,
)
from tether.store import Store, connect_pool, migrate
from tether.store.audit import ChainCheck


def _calls(task_id: str, at: datetime, first: int, count: int, failed: int) -> list[ToolCallRecord]:
    return [
        ToolCallRecord(
            seq=first + n,
            at=at + timedelta(minutes=n),
            task_id=task_id,
            call=ToolCall(tool="Bash" if n % 2 else "Edit", ok=n >= failed, action=f"step {n}"),
        )
        for n in range(count)
    ]


def _spent(show: str) -> str:
    found = re.search(r"spent \$[\d.]+ over \d+ tool calls \(\d+ failed\)", show)
    assert found, show
    return found.group(0)


async def test_prune_rolls_the_ledger_up_and_task_show_answers_the_same(
    fresh_db: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=120), now - timedelta(hours=2)
    pool = await connect_pool(fresh_db)
    try:
        await migrate(pool)
        store = Store(pool)
        spec = TaskSpec(
            id="t-year", title="A task of last spring", checks=[ShellCheck(command="true")]
        )
        view = TaskView(spec=spec, state=TaskState.DONE, assignee="coder")
        view.created_at, view.updated_at = now - timedelta(days=200), now - timedelta(days=1)
        await store.record(view, [])
        # Two sessions on the task, through the store's own writes with their clocks: one four
        # months ago (40 calls, 5 failed, $3.25), one two hours ago (6 calls, 2 failed, $0.50).
        await store.record_tool_calls("coder", "s-old", _calls("t-year", old, 1, 40, 5))
        await store.record_tool_calls("coder", "s-new", _calls("t-year", recent, 1, 6, 2))
        usage = TokenUsage(input=1000, output=200, cache_read=5000, cache_write=0)
        await store.record_costs("coder", "s-old", {"t-year": 3.25}, {"t-year": usage}, at=old)
        await store.record_costs("coder", "s-new", {"t-year": 0.5}, {"t-year": usage})
        cost_before = await store.task_cost("t-year")
        env = clean_environment(DATABASE_URL=fresh_db, TETHER_HOME=str(tmp_path / "home"))

        shown = await tether(env, "task", "show", "t-year")
        assert shown.code == 0, shown.err
        assert _spent(shown.out) == "spent $3.75 over 46 tool calls (7 failed)"

        # A dry run says what is older and what keeps it, and changes nothing.
        dry = await tether(env, "prune")
        assert dry.code == 0, dry.err
        assert dry.out.startswith("Dry run: nothing was removed.")
        assert re.search(r"tool_calls\s+40 rows\s+summed into tool_call_days", dry.out)
        assert re.search(r"cost_ledger\s+1 rows\s+summed into cost_days", dry.out)
        assert re.search(r"tasks\s+1\n", dry.out)  # what no prune touches, with its size
        assert await pool.fetchval("SELECT count(*) FROM tool_calls") == 46
        assert await pool.fetchval("SELECT count(*) FROM tool_call_days") == 0

        applied = await tether(env, "prune", "--apply")
        assert applied.code == 0, applied.err
        assert re.search(
            r"tool_calls\s+40 rows\s+summed into tool_call_days.*\+\d+ rollup", applied.out
        )
        assert await pool.fetchval("SELECT count(*) FROM tool_calls") == 6
        # One row per agent, task, day and tool: 40 calls over 40 minutes of one day, two tools.
        days = await pool.fetch("SELECT tool, calls, failed FROM tool_call_days ORDER BY tool")
        assert [(r["tool"], r["calls"], r["failed"]) for r in days] == [
            ("Bash", 20, 2),
            ("Edit", 20, 3),
        ]
        assert await pool.fetchval("SELECT count(*) FROM cost_ledger") == 1

        # The same answers from what was kept: the founder's view and the governors' reads.
        after = await tether(env, "task", "show", "t-year")
        assert _spent(after.out) == _spent(shown.out)
        assert await store.task_cost("t-year") == cost_before
        assert await store.completed_task_costs(None, 10) == [cost_before]

        # The prune is on the record: its row, and an entry in the audit chain, which verifies.
        assert [r["removed"]["tool_calls"] for r in await store.last_prunes()] == [40]
        pruned = await pool.fetchrow("SELECT kind, subject FROM audit_chain ORDER BY seq DESC")
        assert (pruned["kind"], pruned["subject"]) == ("pruned", "retention")

        # Again: nothing more is old enough, and nothing changes.
        again = await tether(env, "prune", "--apply", "--json")
        assert '"rows": 40' not in again.out
        assert _spent((await tether(env, "task", "show", "t-year")).out) == _spent(shown.out)
    finally:
        await pool.close()


async def test_prune_removes_only_what_the_audit_chain_holds(fresh_db: str) -> None:
    pool = await connect_pool(fresh_db)
    try:
        await migrate(pool)
        store = Store(pool)
        ids = []
        for n in range(3):
            item = InboxItem(key=f"k{n}", kind="overlap", subject=f"s{n}", title=f"item {n}")
            ids.append((await store.post_inbox(item))[0])
        await store.acknowledge(ids[:2])
        await store.record_refusal(
            RefusalRecord(
                workflow_id="task-x", workflow_type="TaskWorkflow", handler="claim",
                kind="update", reason="not sealed", at=datetime.now(UTC),
            )
        )  # fmt: skip
        await store.record_egress_refusal("coder", "p1", "example.com", 443, "not allowed")
        later = datetime.now(UTC) + timedelta(days=1)  # everything above is older than this

        dry = await store.prune(later, apply=False)
        rows = {p.table: (p.rows, p.kept_in) for p in dry.parts}
        assert rows["inbox"] == (2, "audit_chain")  # the cleared ones, not the open one
        assert rows["refused_messages"] == (1, "audit_chain")
        assert rows["egress_refusals"] == (1, "audit_chain")
        assert len(await store.inbox(include_cleared=True)) == 3

        await store.prune(later, apply=True, by="founder")
        assert [i.title for i in await store.inbox(include_cleared=True)] == ["item 2"]
        assert await pool.fetchval("SELECT count(*) FROM refused_messages") == 0
        assert await pool.fetchval("SELECT count(*) FROM egress_refusals") == 0
        # What was removed is still on the audit chain, which still verifies.
        posted = await pool.fetch(
            "SELECT subject FROM audit_chain WHERE kind = 'inbox_acknowledged' ORDER BY seq"
        )
        assert [r["subject"] for r in posted] == ["s0", "s1"]
        check = ChainCheck([])
        async for row in store.audit_rows():
            check.add(row["seq"], row["body"], row["prev"], row["hash"])
        assert check.finish().ok
    finally:
        await pool.close()


async def test_a_prune_age_the_governors_still_read_is_refused(
    fresh_db: str, tmp_path: Path
) -> None:
    env = clean_environment(DATABASE_URL=fresh_db, TETHER_HOME=str(tmp_path / "home"))
    refused = await tether(env, "prune", "--older-than", "3")
    assert refused.code == 2
    assert "3 days is too recent: the governors and the budgets read the last week" in refused.err
    conn = await asyncpg.connect(fresh_db)
    try:  # nothing was even migrated: the command stopped at its arguments
        assert await conn.fetchval("SELECT to_regclass('tool_call_days')") is None
    finally:
        await conn.close()
