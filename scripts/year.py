"""A year's record of an eleven-agent team, for measuring what grows (issue 31).

Two steps:
1. **Templates, through Tether's own paths.** A short soak (scripts/soak.py) runs the team
   against a throwaway stack: sessions reporting through the gateway, tasks created, claimed and
   submitted through the client with their checks run by the worker, deployments requested,
   approved with the founder's signed tag and rolled out. What it left in PostgreSQL (tasks and
   their events, sessions, the tool-call log, the cost ledger and spend, deployments and their
   audit) is kept as the templates (`--home`/templates.json).
2. **The days, in bulk.** Running a year at its real pace takes a year, and compressed through
   Temporal it takes days on these machines; so each day of the year is written through the
   store's own functions (`record`, `record_session`, `record_tool_calls`, `record_costs`,
   `record_spend_days`, `post_inbox`, `acknowledge`, `audit`, `record_deployment`) from the
   templates with new ids and the clock moved to that day: rows the product itself wrote,
   re-stamped, oldest day first (so the audit chain's order is the clock's). Temporal gets none of
   it: its closed workflows leave it after the namespace's retention anyway, and nothing the
   founder reads depends on them.

The seed's rates per day: 220 tasks, 110 sessions, 8,200 tool calls (a call every few seconds
while an agent works), 5 deployments, 4 inbox items (a year: 80,000 tasks, 40,000 sessions, 3
million tool calls, 2,000 deployments). `--size month` is 30 days, for the test suite;
`--size year` 365. `--scale` multiplies every rate (0.1: a tenth of a team).

Stop and resume: each day is written in one go and recorded in `--home`/progress.json; the next
run starts after the last day done. Writing a day again changes nothing (every write is keyed).

    .venv/bin/python scripts/year.py --size year --home year-runs/year
    .venv/bin/python scripts/year.py --database-url URL --size month   # into a given database
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tether.contracts import (  # noqa: E402
    InboxItem,
    SessionState,
    SessionView,
    TaskRecord,
    TokenUsage,
    ToolCall,
    ToolCallRecord,
)
from tether.store import Store, connect_pool, migrate  # noqa: E402

SIZES = {"month": 30, "year": 365}
# Per day, for the whole team (the seed's eleven agents).
RATES = {"tasks": 220, "sessions": 110, "tool_calls": 8200, "deployments": 5, "inbox": 4}


# -- step 1: the templates ------------------------------------------------------------------


async def dump_templates(store: Store, path: Path) -> dict[str, int]:
    """What a run left in PostgreSQL, as templates for the days (JSON)."""
    pool = store.pool
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM tasks ORDER BY created_at, id")]
    tasks = []
    for task_id in ids:
        record = await store.get_task(task_id)
        if record is not None:
            tasks.append(record.model_copy(update={"ledger": None}).model_dump(mode="json"))
    sessions = [
        dict(r)
        for r in await pool.fetch(
            """SELECT agent, external_id, runtime, state, task_id, started_at, ended_at,
                      end_reason, blocker, credentials, artifact_result, pseudo_work, seq
               FROM sessions ORDER BY started_at"""
        )
    ]
    calls = [dict(r) for r in await pool.fetch("SELECT * FROM tool_calls ORDER BY at, seq")]
    costs = [dict(r) for r in await pool.fetch("SELECT * FROM cost_ledger ORDER BY updated_at")]
    deployments = []
    for d in await pool.fetch(
        "SELECT * FROM deployments WHERE deployment_id IS NOT NULL ORDER BY finished_at"
    ):
        audit = await pool.fetch(
            "SELECT kind, actor, detail, at FROM deploy_audit WHERE deployment_id = $1 ORDER BY id",
            d["deployment_id"],
        )
        deployments.append({**dict(d), "audit": [dict(a) for a in audit]})
    inbox = [
        dict(r)
        for r in await pool.fetch(
            "SELECT kind, subject, title, detail, action, created_at, cleared_at FROM inbox"
        )
    ]
    data = {
        "tasks": tasks,
        "sessions": sessions,
        "tool_calls": calls,
        "costs": costs,
        "deployments": deployments,
        "inbox": inbox,
    }
    path.write_text(json.dumps(data, default=str))
    return {k: len(v) for k, v in data.items()}


def make_templates(home: Path, minutes: float) -> Path:
    """Run the team (scripts/soak.py) for `minutes` and keep what it wrote."""
    path = home / "templates.json"
    if path.exists():
        return path
    print(f"templates: running the team through Tether's own paths for {minutes:g} minutes")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "soak.py"),
            "--minutes",
            str(minutes),
            "--task-every",
            "10",
            "--call-every",
            "2",
            "--deploy-every",
            "60",
            "--fail-every",
            "100000",
            "--out",
            str(home / "templates-run"),
            "--templates",
            str(path),
        ],
        check=True,
        cwd=ROOT,
    )
    return path


# -- step 2: the days -----------------------------------------------------------------------


def _at(value: str | datetime) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass
class Templates:
    tasks: list[TaskRecord]
    sessions: list[dict[str, Any]]
    # Each session's tool calls (its key's), in order.
    calls: list[list[dict[str, Any]]]
    costs: list[dict[str, Any]]
    deployments: list[dict[str, Any]]
    inbox: list[dict[str, Any]]

    @classmethod
    def load(cls, path: Path) -> Templates:
        raw = json.loads(path.read_text())
        tasks = [TaskRecord.model_validate(t) for t in raw["tasks"]]
        done = [t for t in tasks if t.task.state.value == "done"] or tasks
        by_session: dict[str, list[dict[str, Any]]] = {}
        for c in raw["tool_calls"]:
            by_session.setdefault(c["session_key"], []).append(c)
        calls = [c for c in by_session.values() if c] or [[]]
        if not done or not raw["sessions"]:
            raise SystemExit(f"{path} has no finished task or no session to take as a template")
        return cls(done, raw["sessions"], calls, raw["costs"], raw["deployments"], raw["inbox"])


def _shift(record: TaskRecord, task_id: str, start: datetime, assignee: str) -> TaskRecord:
    """The template task as one started at `start`: its id, its clock, its agent."""
    view = record.task
    assert view.created_at is not None and view.updated_at is not None
    delta = start - view.created_at
    spec = view.spec.model_copy(update={"id": task_id})
    moved = view.model_copy(
        update={
            "spec": spec,
            "assignee": assignee,
            "created_at": view.created_at + delta,
            "updated_at": view.updated_at + delta,
            "last_evidence": [
                e.model_copy(update={"started_at": e.started_at + delta})
                if getattr(e, "started_at", None)
                else e
                for e in view.last_evidence
            ],
        }
    )
    events = [
        e.model_copy(
            update={"at": e.at + delta, "actor": assignee if e.actor != "founder" else e.actor}
        )
        for e in record.events
    ]
    return TaskRecord(task=moved, events=events)


async def write_day(
    store: Store, t: Templates, day: date, n_day: int, scale: float, agents: list[str]
) -> dict[str, int]:
    """One day of the team's work, through the store's own writes; keyed, so writing it again
    changes nothing."""
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rates = {k: max(1, round(v * scale)) for k, v in RATES.items()}
    stamp = day.strftime("%Y%m%d")
    written = dict.fromkeys(("tasks", "sessions", "tool_calls", "deployments", "inbox"), 0)

    # Tasks, spread over the working day (08:00-20:00), round robin over the agents.
    task_ids: dict[str, list[str]] = {a: [] for a in agents}
    gate = asyncio.Semaphore(8)

    async def one_task(n: int) -> None:
        template = t.tasks[(n_day * rates["tasks"] + n) % len(t.tasks)]
        agent = agents[n % len(agents)]
        task_id = f"y{stamp}-{n:04d}"
        task_ids[agent].append(task_id)
        start = base + timedelta(hours=8, seconds=n * 43200 // rates["tasks"])
        shifted = _shift(template, task_id, start, agent)
        async with gate:
            await store.record(shifted.task, shifted.events)

    await asyncio.gather(*(one_task(n) for n in range(rates["tasks"])))
    written["tasks"] = rates["tasks"]

    # Sessions, each with its share of the day's tool calls and its cost on its task.
    per_session = max(1, rates["tool_calls"] // rates["sessions"])

    async def one_session(n: int) -> None:
        template = t.sessions[n % len(t.sessions)]
        agent = agents[n % len(agents)]
        started = base + timedelta(hours=8, seconds=n * 43200 // rates["sessions"])
        ended = started + timedelta(minutes=40)
        mine = task_ids[agent]
        task_id = mine[(n // len(agents)) % len(mine)] if mine else None
        view = SessionView(
            agent=agent,
            external_id=f"cc-{agent}-{stamp}-{n}",
            runtime=template["runtime"],
            state=SessionState.ENDED,
            started_at=started,
            ended_at=ended,
            end_reason=template["end_reason"] or "ended by the agent",
            task_id=task_id,
            pseudo_work=bool(template["pseudo_work"]),
            seq=int(template["seq"] or 0) + 1,
        )
        key = f"{agent}:{started.isoformat()}"
        calls = t.calls[n % len(t.calls)]
        records = []
        for i in range(per_session):
            c = calls[i % len(calls)] if calls else {"tool": "Bash", "ok": True}
            records.append(
                ToolCallRecord(
                    seq=i + 1,
                    at=started + timedelta(seconds=i * 2400 // per_session),
                    task_id=task_id,
                    call=ToolCall(
                        tool=c["tool"],
                        ok=c["ok"],
                        action=c.get("action") or "",
                        signature=c.get("signature") or "",
                        error=c.get("error") or "",
                        exit_code=c.get("exit_code"),
                    ),
                )
            )
        cost = t.costs[n % len(t.costs)] if t.costs else None
        usd = float(cost["usd"]) if cost else 0.4
        usage = TokenUsage(
            input=int(cost["input_tokens"]) if cost else 0,
            output=int(cost["output_tokens"]) if cost else 0,
            cache_read=int(cost["cache_read_tokens"]) if cost else 0,
            cache_write=int(cost["cache_write_tokens"]) if cost else 0,
        )
        async with gate:
            await store.record_session(view, f"session-{agent}", f"run-{stamp}-{n}")
            await store.record_tool_calls(agent, key, records)
            if task_id:
                await store.record_costs(agent, key, {task_id: usd}, {task_id: usage}, at=ended)
            await store.record_spend_days(agent, key, {day.isoformat(): usd})

    await asyncio.gather(*(one_session(n) for n in range(rates["sessions"])))
    written["sessions"] = rates["sessions"]
    written["tool_calls"] = rates["sessions"] * per_session

    # Deployments: their audit as the deployment workflow wrote it, and the outcome.
    for n in range(rates["deployments"] if t.deployments else 0):
        d = t.deployments[n % len(t.deployments)]
        deployment_id = f"deploy-{d['service']}-y{stamp}-{n}"
        first = _at(d["audit"][0]["at"]) if d["audit"] else _at(d["finished_at"])
        delta = base + timedelta(hours=9 + 2 * n) - first
        for a in d["audit"]:
            detail = json.loads(a["detail"]) if isinstance(a["detail"], str) else a["detail"]
            await store.audit(
                deployment_id, d["service"], a["kind"], a["actor"], detail, _at(a["at"]) + delta
            )
        await store.record_deployment(
            deployment_id,
            d["service"],
            d["commit"],
            d["ref"],
            d["agent"] or "devops",
            d["state"],
            _at(d["finished_at"]) + delta,
            d["environment"],
        )
    written["deployments"] = rates["deployments"] if t.deployments else 0

    # Inbox items, most acknowledged the same day.
    for n in range(rates["inbox"]):
        posted = base + timedelta(hours=10 + n)
        template = t.inbox[n % len(t.inbox)] if t.inbox else None
        kind = template["kind"] if template else "overlap"
        item = InboxItem(
            key=f"year-{stamp}-{n}",
            kind=kind,
            subject=f"y{stamp}-{n:04d}",
            title=(template["title"] if template else "Two agents touch the same files"),
            created_at=posted,
        )
        item_id, new = await store.post_inbox(item)
        if new and n % 4:
            await store.acknowledge([item_id], at=posted + timedelta(hours=3))
    written["inbox"] = rates["inbox"]
    return written


@contextlib.asynccontextmanager
async def database(args: argparse.Namespace) -> AsyncIterator[str]:
    """The database to fill: the one given, or an embedded server in `--home` (kept)."""
    if args.database_url:
        yield args.database_url
        return
    from tether.ops.stack import EmbeddedPostgres, free_port

    port_file = args.home / "pg-port"
    port = int(port_file.read_text()) if port_file.exists() else free_port()
    port_file.write_text(str(port))
    pg = EmbeddedPostgres(args.home / "pg", port=port)
    pg.start()
    try:
        yield pg.url
    finally:
        pg.stop()


async def fill(url: str, templates: Path, days: int, scale: float, progress: Path) -> None:
    t = Templates.load(templates)
    agents = sorted({s["agent"] for s in t.sessions})
    done = json.loads(progress.read_text()) if progress.exists() else {}
    today = datetime.now(UTC).date()
    first = today - timedelta(days=days)
    pool = await connect_pool(url)
    try:
        await migrate(pool)
        store = Store(pool)
        started = time.monotonic()
        for n in range(days):
            day = first + timedelta(days=n)
            if day.isoformat() in done:
                continue
            written = await write_day(store, t, day, n, scale, agents)
            done[day.isoformat()] = written
            progress.write_text(json.dumps(done))
            if n % 10 == 0 or n == days - 1:
                print(
                    f"{day}: day {n + 1} of {days} written ({written['tasks']} tasks, "
                    f"{written['tool_calls']} tool calls; {time.monotonic() - started:.0f} s)",
                    flush=True,
                )
    finally:
        await pool.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="month")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every daily rate")
    parser.add_argument("--home", type=Path, help="where the templates, progress and database live")
    parser.add_argument("--database-url", help="fill this database instead of one in --home")
    parser.add_argument("--templates", type=Path, help="templates made before (templates.json)")
    parser.add_argument("--live-minutes", type=float, default=3.0, help="the templates' run")
    args = parser.parse_args()
    args.home = args.home or ROOT / "year-runs" / args.size
    args.home.mkdir(parents=True, exist_ok=True)
    templates = args.templates or make_templates(args.home, args.live_minutes)
    async with database(args) as url:
        await fill(url, templates, SIZES[args.size], args.scale, args.home / "progress.json")
    print(f"done: {SIZES[args.size]} days in {url if args.database_url else args.home}")
    return 0


if __name__ == "__main__":
    from tether.ops.runtime import run_and_exit

    run_and_exit(main())
