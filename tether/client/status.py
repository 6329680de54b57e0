"""The founder's cockpit as data: what `tether status` shows (and `tether status --json` prints),
read from PostgreSQL alone. The models here are the report's shape; `tether.status.build` makes
the report without them, so that `tether status` imports neither pydantic nor the Temporal SDK
(tests/test_cockpit.py holds the two equal)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from tether import status
from tether.budgets import BudgetLine, budget_lines
from tether.config import TetherConfig
from tether.contracts import Model, SessionState, TaskSummary
from tether.store import reads


class AgentStatus(Model):
    agent: str
    session: SessionState | None = None
    runtime: str = ""
    started_at: datetime | None = None
    task_id: str | None = None
    # The share of the context window in use (0.09 is 9%), and this session's spend: as of
    # `figures_at`, the session's last write of its figures (up to 60 s behind).
    context_pct: float | None = None
    cost_usd: float | None = None
    # A governor's hold (loop, cost) or a credential blocker, in words.
    hold: str | None = None
    blocker: str | None = None
    # Ended sessions flagged as pseudo-work, and ended sessions, over the agent's history.
    pseudo_work: int = 0
    sessions_ended: int = 0
    # When the open session last wrote its figures into its row (None: not yet, or ended).
    figures_at: datetime | None = None
    # The agent's process when Tether runs it: running, queued (every worker runs its
    # max_agents already), restarting, stopped, finished or failed.
    run: str | None = None
    # The process runs as the worker's own user, outside its sandbox (`isolation = "none"`).
    unsandboxed: bool = False


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


async def gather_status(
    store: Any,
    config: TetherConfig | None = None,
    horizon_days: int = status.EXPIRY_HORIZON_DAYS,
    now: datetime | None = None,
) -> StatusReport:
    """The report, as `tether status` makes it (the budgets with `config`)."""
    now = now or datetime.now(UTC)
    rows = await reads.status_rows(store.pool, now - status.DEPLOYMENTS_SINCE)
    budgets = (
        [b.model_dump(mode="json") for b in await budget_lines(store, config, now)]
        if config is not None
        else []
    )
    report = status.build(rows, now, budgets, horizon_days=horizon_days)
    return StatusReport.model_validate(reads.jsonable(report))
