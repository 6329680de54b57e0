"""The founder's cockpit as data: what `tether status` shows (and `tether status --json` prints),
read from PostgreSQL and asked live of the open workflows."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import Field
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client

from tether import constants
from tether.client.budgets import BudgetLine, budget_lines
from tether.client.deployments import deploy_queue, deploy_view
from tether.client.sessions import session_view
from tether.config import TetherConfig
from tether.contracts import GOVERNOR, Model, SessionState, SessionView, TaskState, TaskSummary


class AgentStatus(Model):
    agent: str
    session: SessionState | None = None
    runtime: str = ""
    started_at: datetime | None = None
    task_id: str | None = None
    # The share of the context window in use (0.09 is 9%), and this session's spend.
    context_pct: float | None = None
    cost_usd: float | None = None
    # A governor's hold (loop, cost) or a credential blocker, in words.
    hold: str | None = None
    blocker: str | None = None
    # Ended sessions flagged as pseudo-work, and ended sessions, over the agent's history.
    pseudo_work: int = 0
    sessions_ended: int = 0
    # False when the session's workflow could not be asked (its figures are then from PostgreSQL).
    live: bool = True
    # The agent's process when Tether runs it: running, queued (every worker runs its
    # max_agents already), restarting, stopped, finished or failed.
    run: str | None = None


class DeploymentStatus(Model):
    deployment_id: str
    service: str
    state: str
    environment: str = "staging"
    ref: str = ""
    commit: str | None = None
    agent: str = ""
    reason: str = ""
    at: datetime | None = None


class RunningStatus(Model):
    """What runs where: a service's last finished deployment in one environment."""

    service: str
    environment: str
    commit: str
    ref: str = ""
    deployment_id: str = ""
    since: datetime | None = None


class QueueStatus(Model):
    service: str
    holder: str | None = None
    waiting: list[str] = Field(default_factory=list)


class CredentialAlert(Model):
    name: str
    ok: bool
    reason: str = ""
    expires_at: datetime | None = None
    days_left: float | None = None


class StatusReport(Model):
    generated_at: datetime
    agents: list[AgentStatus] = Field(default_factory=list)
    task_counts: dict[str, int] = Field(default_factory=dict)
    # Tasks not done or cancelled, the held ones first.
    tasks: list[TaskSummary] = Field(default_factory=list)
    deployments: list[DeploymentStatus] = Field(default_factory=list)
    # What runs where, per service and environment.
    running: list[RunningStatus] = Field(default_factory=list)
    queues: list[QueueStatus] = Field(default_factory=list)
    # One line each: what stops work now (held tasks, blocked sessions).
    blockers: list[str] = Field(default_factory=list)
    pseudo_work: list[str] = Field(default_factory=list)
    credentials: list[CredentialAlert] = Field(default_factory=list)
    inbox_open: int = 0
    # Messages the workflows refused for who sent them (no seal, another key, a replay, the
    # wrong agent): in all, and the latest few, one line each.
    refused_total: int = 0
    refused_recent: list[str] = Field(default_factory=list)
    # Hard budgets: spend today / this month against each limit in force.
    budgets: list[BudgetLine] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


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
    client: Client,
    store: Any,
    horizon_days: int = EXPIRY_HORIZON_DAYS,
    config: TetherConfig | None = None,
) -> StatusReport:
    now = datetime.now(UTC)
    report = StatusReport(generated_at=now)
    sessions, counts = await asyncio.gather(store.latest_sessions(), store.pseudo_work_counts())
    views = await asyncio.gather(
        *(_answer(session_view(client, s["agent"])) for s in sessions if s["state"] != "ended")
    )
    live = {v.agent: v for v in views if v is not None}
    for row in sessions:
        report.agents.append(_agent_status(row, live.get(row["agent"]), counts))
    running = [a for a in report.agents if a.run == "running"]
    for a, queued in zip(
        running, await asyncio.gather(*(_queued(client, a.agent) for a in running)), strict=True
    ):
        if queued:
            a.run = "queued"
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
        elif a.hold and a.hold.startswith("budget:"):
            report.blockers.append(f"{a.agent} stopped by a hard budget{a.hold[6:]}")

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
    report.running = [RunningStatus(**row) for row in await store.running_everywhere()]
    if config is not None:
        report.budgets = await budget_lines(store, config, now)
    report.inbox_open = await store.open_inbox_count()
    report.refused_total, recent = await store.refusals(limit=5)
    report.refused_recent = [
        f"{r['at']:%Y-%m-%d %H:%M} {r['kind']} {r['handler']} to {r['workflow_id']}"
        f" ({r['role'] or 'unsealed'}{', for ' + r['agent'] if r['agent'] else ''}): {r['reason']}"
        for r in recent
    ]
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
        status.run = view.run.phase if view.run is not None else None
    return status


async def _queued(client: Client, agent: str) -> bool:
    """Whether the agent's process waits for a worker with room (its activity is scheduled and
    not started): every worker runs its `max_agents` already."""
    try:
        described = await asyncio.wait_for(
            client.get_workflow_handle(constants.session_workflow_id(agent)).describe(),
            QUERY_TIMEOUT_SECONDS,
        )
    except Exception:
        return False
    return any(
        p.activity_type.name == "run_agent"
        and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
        for p in described.raw_description.pending_activities
    )


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
            d.ref, d.commit, d.environment = row["ref"], row["commit"], row["environment"]
    by_id = {d.deployment_id: d for d in deployments}
    for view in await asyncio.gather(*(_answer(deploy_view(client, d)) for d in running)):
        if view is not None:
            d = by_id[view.deployment_id]
            d.state, d.ref, d.commit = view.state.value, view.request.ref, view.commit
            d.environment = view.request.environment
            d.reason = view.reason or view.waiting_for or ""
    queues = []
    lock_query = "WorkflowType = 'ServiceLockWorkflow' AND ExecutionStatus = 'Running'"
    async for wf in client.list_workflows(lock_query, limit=100):
        service = wf.id.removeprefix(constants.LOCK_WORKFLOW_ID_PREFIX)
        if wf.typed_search_attributes.get(constants.SA_STATE) == "free":
            continue  # the lock keeps its state in a search attribute: no query needed
        lock = await _answer(deploy_queue(client, service))
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
