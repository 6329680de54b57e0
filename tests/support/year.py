"""A year of the team's record, written through the store's own functions from templates a run
through Tether's own paths left (scripts/year.py makes them; tests/fixtures/year-templates.json
is one such run's, trimmed): each day's tasks, sessions, tool calls, costs, deployments and inbox
items, with new ids and the clock moved to that day."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tether.contracts import (
    InboxItem,
    SessionState,
    SessionView,
    TaskRecord,
    TokenUsage,
    ToolCall,
    ToolCallRecord,
)
from tether.store import Store

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "year-templates.json"
# Per day, for the whole team (the seed's eleven agents).
RATES = {"tasks": 220, "sessions": 110, "tool_calls": 8200, "deployments": 5, "inbox": 4}
# What a template file keeps of a run (enough variety, small enough to commit).
KEEP = {"tasks": 60, "calls_per_session": 120, "deployments": 6}


async def dump_templates(store: Store, path: Path) -> dict[str, int]:
    """What a run left in PostgreSQL, as templates for the days (JSON)."""
    pool = store.pool
    ids = [
        r["id"]
        for r in await pool.fetch(
            "SELECT id FROM tasks ORDER BY state = 'done' DESC, created_at, id LIMIT $1",
            KEEP["tasks"],
        )
    ]
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
    calls = [
        dict(r)
        for r in await pool.fetch(
            "SELECT * FROM tool_calls WHERE seq <= $1 ORDER BY at, seq", KEEP["calls_per_session"]
        )
    ]
    costs = [dict(r) for r in await pool.fetch("SELECT * FROM cost_ledger ORDER BY updated_at")]
    deployments = []
    for d in await pool.fetch(
        "SELECT * FROM deployments WHERE deployment_id IS NOT NULL ORDER BY finished_at LIMIT $1",
        KEEP["deployments"],
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

    def agents(self) -> list[str]:
        return sorted({s["agent"] for s in self.sessions})

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
    store: Store,
    t: Templates,
    day: date,
    n_day: int,
    scale: float,
    agents: list[str],
    rates: dict[str, int] | None = None,
) -> dict[str, int]:
    """One day of the team's work, through the store's own writes; keyed, so writing it again
    changes nothing."""
    base = datetime(day.year, day.month, day.day, tzinfo=UTC)
    rates = {k: max(1, round(v * scale)) for k, v in {**RATES, **(rates or {})}.items()}
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
            # One session in twenty ends without a deliverable (the templates' run made none:
            # its agents commit nothing, so every one of its sessions was flagged).
            pseudo_work=n % 20 == 0,
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
    planned = [
        (n, t.deployments[n % len(t.deployments)])
        for n in range(rates["deployments"] if t.deployments else 0)
    ]
    ids = [f"deploy-{d['service']}-y{stamp}-{n}" for n, d in planned]
    # The audit rows are not keyed: a day written again skips what it wrote before.
    recorded = await store.recorded_deployments(ids)
    for (n, d), deployment_id in zip(planned, ids, strict=True):
        if deployment_id in recorded:
            continue
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


async def write_year(
    store: Store,
    days: int,
    rates: dict[str, int] | None = None,
    after_day: Callable[[int, date], Awaitable[None]] | None = None,
    templates: Path = FIXTURE,
) -> date:
    """`days` days ending yesterday, oldest first (`after_day(n, day)` after each); the first
    day."""
    t = Templates.load(templates)
    first = datetime.now(UTC).date() - timedelta(days=days)
    for n in range(days):
        day = first + timedelta(days=n)
        await write_day(store, t, day, n, 1.0, t.agents(), rates)
        if after_day is not None:
            await after_day(n, day)
    return first
