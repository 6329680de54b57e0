"""The founder's cockpit: `tether status` and `tether inbox`, gathered and rendered.

Status reads two sources. PostgreSQL has the read models every workflow writes (tasks, sessions,
credentials, the inbox); Temporal has what is live: each open session's governor figures (asked
by query, so context % and cost are current, not as of the last flush), the deployments of the
last day (by search attribute) and the deploy queues. A source that cannot be read becomes a line
in `problems`, never a crash: the cockpit is what the founder opens when something is wrong.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO, TypeVar

from temporalio.client import Client

from tether import api, constants
from tether.contracts import (
    GOVERNOR,
    AgentStatus,
    CredentialAlert,
    DeploymentStatus,
    InboxItem,
    QueueStatus,
    SessionState,
    SessionView,
    StatusReport,
    TaskState,
)

# Credentials expiring within this many days are shown (the largest reminder threshold).
EXPIRY_HORIZON_DAYS = 14
DEPLOYMENTS_SINCE = timedelta(hours=24)
QUERY_TIMEOUT_SECONDS = 5.0

T = TypeVar("T")

# Held tasks first, then the work in flight, then what waits.
_TASK_ORDER = {
    TaskState.BLOCKED: 0,
    TaskState.PAUSED: 1,
    TaskState.VERIFYING: 2,
    TaskState.CLAIMED: 3,
    TaskState.OPEN: 4,
}


async def gather_status(
    client: Client, store: Any, horizon_days: int = EXPIRY_HORIZON_DAYS
) -> StatusReport:
    now = datetime.now(UTC)
    report = StatusReport(generated_at=now)
    sessions, counts = await asyncio.gather(store.latest_sessions(), store.pseudo_work_counts())
    views = await asyncio.gather(
        *(_answer(api.session_view(client, s["agent"])) for s in sessions if s["state"] != "ended")
    )
    live = {v.agent: v for v in views if v is not None}
    for row in sessions:
        report.agents.append(_agent_status(row, live.get(row["agent"]), counts))
    for agent, (flagged, ended) in counts.items():
        if agent not in {a.agent for a in report.agents}:
            report.agents.append(
                AgentStatus(agent=agent, pseudo_work=flagged, sessions_ended=ended)
            )
    report.problems += [
        f"session of {row['agent']}: its workflow did not answer; figures from PostgreSQL"
        for row in sessions
        if row["state"] != "ended" and row["agent"] not in live
    ]

    report.task_counts = await store.task_counts()
    summaries = await store.task_summaries()
    report.tasks = sorted(
        (t for t in summaries if t.state in _TASK_ORDER),
        key=lambda t: (_TASK_ORDER[t.state], t.id),
    )
    for t in report.tasks:
        if t.state in (TaskState.BLOCKED, TaskState.PAUSED):
            by = " by Tether's governor" if t.held_by == GOVERNOR else ""
            report.blockers.append(
                f"task {t.id} {t.state}{by}: {t.hold_reason or 'no reason given'}"
            )
    for a in report.agents:
        if a.blocker:
            report.blockers.append(f"{a.agent}: {a.blocker}")

    for row in await store.recent_pseudo_work():
        result = row.get("artifact_result") or {}
        why = result.get("summary") if isinstance(result, dict) else None
        report.pseudo_work.append(
            f"{row['agent']} at {row['ended_at']:%Y-%m-%d %H:%M}: {why or row['end_reason']}"
        )

    for c in await store.credential_statuses():
        days = (c.expires_at - now).total_seconds() / 86400 if c.expires_at else None
        if not c.ok or (days is not None and days <= horizon_days):
            report.credentials.append(
                CredentialAlert(
                    name=c.name, ok=c.ok, reason=c.reason, expires_at=c.expires_at, days_left=days
                )
            )

    try:
        report.deployments, report.queues = await _deployments(client, store, now)
    except Exception as exc:  # the rest of the status is still worth showing
        why = str(exc) or type(exc).__name__
        report.problems.append(f"deployments could not be listed from Temporal: {why}")
    report.inbox_open = await store.open_inbox_count()
    return report


async def _answer(call: Awaitable[T]) -> T | None:
    """A workflow's answer to a query, or None when no worker answers it in time."""
    try:
        return await asyncio.wait_for(call, QUERY_TIMEOUT_SECONDS)
    except Exception:
        return None


def _agent_status(
    row: dict[str, Any], view: SessionView | None, counts: dict[str, tuple[int, int]]
) -> AgentStatus:
    flagged, ended = counts.get(row["agent"], (0, 0))
    status = AgentStatus(
        agent=row["agent"],
        session=SessionState(row["state"]),
        runtime=row["runtime"],
        started_at=row["started_at"],
        task_id=row["task_id"],
        pseudo_work=flagged,
        sessions_ended=ended,
        live=view is not None or row["state"] == "ended",
    )
    blocker = row.get("blocker")
    if isinstance(blocker, dict) and row["state"] != "ended":
        status.blocker = f"{blocker.get('subject')}: {blocker.get('reason')}"
    if view is not None:
        status.session, status.task_id = view.state, view.task_id
        status.context_pct = view.governor.context_pct
        status.cost_usd = view.governor.cost_usd
        if view.governor.hold is not None:
            status.hold = f"{view.governor.hold.kind}: {view.governor.hold.reason}"
        status.blocker = view.blocker.describe() if view.blocker else None
    return status


async def _deployments(
    client: Client, store: Any, now: datetime
) -> tuple[list[DeploymentStatus], list[QueueStatus]]:
    since = (now - DEPLOYMENTS_SINCE).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = f"WorkflowType = 'DeploymentWorkflow' AND StartTime > '{since}'"
    deployments: list[DeploymentStatus] = []
    running: list[str] = []
    async for wf in client.list_workflows(query, limit=50):
        sa = wf.typed_search_attributes
        deployments.append(
            DeploymentStatus(
                deployment_id=wf.id,
                service=sa.get(constants.SA_SERVICE) or "",
                state=sa.get(constants.SA_STATE) or str(wf.status.name if wf.status else ""),
                agent=sa.get(constants.SA_AGENT) or "",
                at=wf.start_time,
            )
        )
        if wf.close_time is None:
            running.append(wf.id)
    recorded = await store.recorded_deployments([d.deployment_id for d in deployments])
    for d in deployments:
        row = recorded.get(d.deployment_id)
        if row is not None:
            d.ref, d.commit = row["ref"], row["commit"]
    by_id = {d.deployment_id: d for d in deployments}
    for view in await asyncio.gather(*(_answer(api.deploy_view(client, d)) for d in running)):
        if view is not None:
            d = by_id[view.deployment_id]
            d.state, d.ref, d.commit = view.state.value, view.request.ref, view.commit
            d.reason = view.reason or ""
    queues = []
    lock_query = "WorkflowType = 'ServiceLockWorkflow' AND ExecutionStatus = 'Running'"
    async for wf in client.list_workflows(lock_query, limit=100):
        service = wf.id.removeprefix(constants.LOCK_WORKFLOW_ID_PREFIX)
        if wf.typed_search_attributes.get(constants.SA_STATE) == "free":
            continue  # the lock keeps its state in a search attribute: no query needed
        lock = await _answer(api.deploy_queue(client, service))
        if lock is None:  # no worker serves it now: say so rather than guess
            queues.append(QueueStatus(service=service, holder="(lock not answering)"))
            continue
        if lock.holder is None and not lock.waiting:
            continue
        queues.append(
            QueueStatus(
                service=service,
                holder=lock.holder.deployment_id if lock.holder else None,
                waiting=[w.deployment_id for w in lock.waiting],
            )
        )
    return deployments, queues


# --- rendering ---------------------------------------------------------------------------------


def use_colour(stream: TextIO, choice: str = "auto") -> bool:
    """Colour on a terminal, plain when piped; NO_COLOR (no-color.org) and --color win."""
    if choice in ("always", "never"):
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    return stream.isatty() and os.environ.get("TERM") != "dumb"


class _Paint:
    CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "dim": "2", "bold": "1"}

    def __init__(self, on: bool) -> None:
        self.on = on

    def __call__(self, text: str, style: str) -> str:
        if not self.on or not text or not style:
            return text
        return f"\033[{self.CODES[style]}m{text}\033[0m"


_STATE_STYLE = {
    "blocked": "red",
    "paused": "red",
    "failed": "red",
    "refused": "red",
    "expired": "yellow",
    "verifying": "yellow",
    "queued": "yellow",
    "rolling_out": "blue",
    "checking": "blue",
    "claimed": "blue",
    "active": "green",
    "done": "green",
    "ended": "dim",
    "open": "",
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.2f}"


def _table(rows: list[list[str]], widths: list[int] | None = None) -> list[str]:
    """Left-aligned columns; widths measured on the plain text so colour codes do not skew."""
    if not rows:
        return []
    plain = [[_strip(c) for c in r] for r in rows]
    widths = widths or [max(len(r[i]) for r in plain) for i in range(len(rows[0]))]
    out = []
    for row, bare in zip(rows, plain, strict=True):
        cells = [c + " " * (widths[i] - len(bare[i])) for i, c in enumerate(row)]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def _strip(text: str) -> str:
    return re.sub(r"\033\[[0-9;]*m", "", text)


def render_status(report: StatusReport, colour: bool = False) -> str:
    paint = _Paint(colour)

    def state(value: str) -> str:
        return paint(value, _STATE_STYLE.get(value, ""))

    lines = [paint(f"Tether status at {report.generated_at:%Y-%m-%d %H:%M:%S} UTC", "bold")]
    if report.inbox_open:
        lines.append(paint(f"{report.inbox_open} item(s) wait for you: tether inbox", "yellow"))

    lines.append("")
    lines.append(paint("Agents", "bold"))
    rows = [["AGENT", "SESSION", "TASK", "CONTEXT", "COST", "PSEUDO-WORK", "NOTE"]]
    for a in sorted(report.agents, key=lambda a: a.agent):
        note = a.hold or a.blocker or ("" if a.live else "not answering")
        if len(note) > 70:  # the whole reason is under Blockers
            note = note[:69] + "…"
        pseudo = f"{a.pseudo_work}/{a.sessions_ended}" if a.sessions_ended else "-"
        if a.pseudo_work:
            pseudo = paint(pseudo, "red")
        rows.append(
            [
                a.agent,
                state(a.session.value) if a.session else "-",
                a.task_id or "-",
                _pct(a.context_pct) if a.session != SessionState.ENDED else "-",
                _usd(a.cost_usd) if a.session != SessionState.ENDED else "-",
                pseudo,
                paint(note, "red") if (a.hold or a.blocker) else note,
            ]
        )
    lines += _table(rows) if len(rows) > 1 else ["  no agent has had a session yet"]

    lines.append("")
    counts = ", ".join(
        f"{state(s)} {n}" for s, n in sorted(report.task_counts.items(), key=lambda kv: kv[0])
    )
    lines.append(paint("Tasks", "bold") + (f"  ({counts})" if counts else ""))
    rows = [["TASK", "STATE", "ASSIGNEE", "TITLE"]]
    for t in report.tasks:
        rows.append([t.id, state(t.state.value), t.assignee or "-", t.title[:60]])
    lines += _table(rows) if len(rows) > 1 else ["  no open task"]

    lines.append("")
    lines.append(paint("Deployments (last 24 h)", "bold"))
    rows = [["DEPLOYMENT", "SERVICE", "STATE", "REF", "AGENT"]]
    for d in report.deployments:
        ref = f"{d.ref} {d.commit[:8]}" if d.ref and d.commit else d.ref
        rows.append([d.deployment_id, d.service, state(d.state), ref or "-", d.agent or "-"])
    lines += _table(rows) if len(rows) > 1 else ["  none"]
    for q in report.queues:
        waiting = ", ".join(q.waiting) or "nobody"
        lines.append(f"  lock {q.service}: held by {q.holder or 'nobody'}; waiting: {waiting}")

    for title, items, style in (
        ("Blockers", report.blockers, "red"),
        ("Pseudo-work flags (last 7 days)", report.pseudo_work, "yellow"),
    ):
        lines.append("")
        lines.append(paint(title, "bold"))
        lines += [f"  {paint('!', style)} {b}" for b in items] or ["  none"]

    lines.append("")
    lines.append(paint("Credentials", "bold"))
    if not report.credentials:
        lines.append("  all probed credentials are valid and none expires within 14 days")
    for c in report.credentials:
        if not c.ok:
            lines.append(f"  {paint('!', 'red')} {c.name}: {c.reason or 'rejected'}")
        elif c.days_left is not None and c.expires_at is not None:
            when = "expired" if c.days_left <= 0 else f"expires in {c.days_left:.1f} days"
            lines.append(f"  {paint('!', 'yellow')} {c.name}: {when} ({c.expires_at:%Y-%m-%d})")

    if report.problems:
        lines.append("")
        lines.append(paint("Could not read", "bold"))
        lines += [f"  {p}" for p in report.problems]
    return "\n".join(lines)


def render_inbox(items: list[InboxItem], colour: bool = False) -> str:
    paint = _Paint(colour)
    if not items:
        return "inbox is empty: nothing waits for you"
    lines = []
    for item in items:
        when = f"{item.created_at:%Y-%m-%d %H:%M}" if item.created_at else ""
        done = paint(" (cleared)", "dim") if item.cleared_at else ""
        kind = paint(f"[{item.kind}]", "red" if item.kind in _URGENT else "yellow")
        lines.append(f"#{item.id} {when}  {kind} {item.title}{done}")
        if not item.cleared_at:
            lines.append(f"    -> {paint(item.command, 'bold')}")
            if item.see and item.see != item.command:
                lines.append(f"       see: {item.see}")
    return "\n".join(lines)


_URGENT = frozenset(
    {"credential_blocked", "loop_blocked", "cost_paused", "deploy_approval", "deploy_failed"}
)


def stdout_colour(choice: str) -> bool:
    return use_colour(sys.stdout, choice)
