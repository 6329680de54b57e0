"""Activities of agent sessions: read the agent's configuration, probe its credentials, read the
ground truth, run the artifact test, tell the founder, keep the sessions table, remind of expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode

from activities.artifacts import check_artifact
from activities.credentials import (
    SecretUnavailable,
    declared_expiry,
    jwt_expiry,
    probe,
    read_secret,
)
from activities.escalation import escalating
from activities.groundtruth import read_pull_requests, read_repositories
from activities.notify import notify
from tether import budgets
from tether.config import TetherConfig
from tether.constants import task_workflow_id
from tether.contracts import (
    ArtifactInput,
    ArtifactResult,
    BudgetInput,
    BudgetStatus,
    ClearInboxInput,
    CostBaseline,
    CostBaselineInput,
    CredentialStatus,
    ExpiryReminderInput,
    FiguresInput,
    FlushInput,
    GroundTruth,
    HandoffInput,
    InboxItem,
    ProbeInput,
    PullRequestInfo,
    RecordSessionInput,
    SessionSetup,
    SyncInput,
    TaskClaimedInput,
    TaskState,
    TaskView,
)
from tether.store import Store

# The brief reads at most this many tasks other agents hold (for "in flight elsewhere" and the
# overlap check against pull requests) and open tasks (the best one is offered), newest and
# best first: a session starts as fast with 10,000 tasks in the table as with 10.
BRIEF_OTHERS = 100
BRIEF_OPEN = 50


class SessionActivities:
    def __init__(self, store: Store, config: TetherConfig) -> None:
        self.store = store
        self.config = config

    @activity.defn
    @escalating
    async def session_setup(self, agent: str) -> SessionSetup:
        found = self.config.agent(agent)
        if found is None:
            known = ", ".join(a.name for a in self.config.agents) or "none"
            return SessionSetup(
                known=False,
                problem=(
                    f"agent {agent} is not in tether.toml (agents: {known}); add it under "
                    "[[agents]] and restart the worker"
                ),
            )
        return SessionSetup(
            known=True,
            credentials=list(found.credentials),
            repositories=list(found.repositories),
            login=found.login,
            max_hours=self.config.sessions.max_hours,
            limits=self.config.limits_for(found),
        )

    @activity.defn
    @escalating
    async def probe_credentials(self, inp: ProbeInput) -> list[CredentialStatus]:
        now = datetime.now(UTC)
        statuses = await asyncio.gather(
            *(
                probe(name, self.config.credentials[name], self.config.forge, now)
                for name in inp.credentials
                if name in self.config.credentials
            )
        )
        missing = [n for n in inp.credentials if n not in self.config.credentials]
        statuses += [
            CredentialStatus(
                name=n,
                kind="unknown",
                ok=False,
                reason="is not defined in tether.toml",
                checked_at=now,
            )
            for n in missing
        ]
        await self.store.record_credentials(list(statuses))
        return list(statuses)

    @activity.defn
    @escalating
    async def read_local_truth(self, inp: SyncInput) -> GroundTruth:
        """Git (commits, branch tips, checked-out branches), the task table, the handoff."""
        commits, tips, heads, problems = await read_repositories(self.config)
        handoff = await self.store.take_handoff(inp.agent, inp.session_key)
        agent = self.config.agent(inp.agent)
        tasks = await self.store.brief_tasks(
            inp.agent, list(agent.repositories) if agent else [], BRIEF_OTHERS, BRIEF_OPEN
        )
        return GroundTruth(
            commits=commits,
            tasks=tasks,
            branch_tips=tips,
            checked_out=heads,
            handoff=handoff[0] if handoff else None,
            handoff_state=handoff[1] if handoff else {},
            problems=problems,
        )

    @activity.defn
    @escalating
    async def read_forge(self, inp: SyncInput) -> tuple[list[PullRequestInfo], list[str]]:
        """Open pull requests. A rejected forge token raises CredentialRejected (not retried)."""
        return await read_pull_requests(self.config)

    @activity.defn
    @escalating
    async def check_artifact(self, inp: ArtifactInput) -> ArtifactResult:
        return await check_artifact(inp, self.config, self.store)

    @activity.defn
    @escalating
    async def notify_founder(self, item: InboxItem) -> int:
        item_id, _ = await notify(self.store, self.config.notifications, item)
        return item_id

    @activity.defn
    @escalating
    async def record_session(self, inp: RecordSessionInput) -> None:
        await self.store.record_session(inp.session, inp.workflow_id, inp.run_id)

    @activity.defn
    @escalating
    async def record_figures(self, inp: FiguresInput) -> None:
        await self.store.record_figures(inp.agent, inp.started_at, inp.figures)

    @activity.defn
    @escalating
    async def clear_credential_blockers(self, agent: str) -> int:
        return await self.store.clear_inbox(subject=agent, kinds=["credential_blocked"])

    @activity.defn
    @escalating
    async def clear_inbox_items(self, inp: ClearInboxInput) -> int:
        return await self.store.clear_inbox(subject=inp.subject, kinds=inp.kinds)

    # --- governors ----------------------------------------------------------------------------

    @activity.defn
    @escalating
    async def agent_holds_task(self, inp: TaskClaimedInput) -> bool:
        """Whether the task's workflow (the source of truth, not the read model) says the agent
        holds it (asked by the workflow's name: it runs these activities)."""
        handle = activity.client().get_workflow_handle(task_workflow_id(inp.task_id))
        try:
            view: TaskView = await handle.query("view_task", result_type=TaskView)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return view.assignee == inp.agent and view.state == TaskState.CLAIMED

    @activity.defn
    @escalating
    async def archive_handoff(self, inp: HandoffInput) -> int:
        """The knowledge base: the brief and state the agent's next session starts from."""
        return await self.store.archive_handoff(inp.agent, inp.session_key, inp.brief, inp.state)

    @activity.defn
    @escalating
    async def cost_baseline(self, inp: CostBaselineInput) -> CostBaseline:
        """What the task has cost in other sessions, and the rolling average of completed tasks
        (of its kind when there are enough of them, else of all kinds)."""
        found = await self.store.get_task(inp.task_id)
        agent = self.config.agent(found.task.assignee) if found and found.task.assignee else None
        t = self.config.thresholds_for(agent) if agent else self.config.thresholds
        before = await self.store.task_cost(inp.task_id, excluding_session=inp.session_key)
        kind = found.task.spec.kind if found else None
        costs: list[float] = []
        for of_kind, basis in ([(kind, f"kind {kind}")] if kind else []) + [(None, "all kinds")]:
            costs = await self.store.completed_task_costs(of_kind, t.cost_window)
            if len(costs) >= t.cost_min_history:
                return CostBaseline(
                    task_before_usd=before,
                    average_usd=sum(costs) / len(costs),
                    tasks=len(costs),
                    basis=basis,
                )
        return CostBaseline(task_before_usd=before, tasks=len(costs), basis="ceiling")

    @activity.defn
    @escalating
    async def flush_governor(self, inp: FlushInput) -> None:
        await self.store.record_costs(inp.agent, inp.session_key, inp.task_costs, inp.task_tokens)
        if inp.figures is not None:
            f = inp.figures
            await self.store.record_figures(f.agent, f.started_at, f.figures)
        if inp.day_costs:
            await self.store.record_spend_days(inp.agent, inp.session_key, inp.day_costs)
        if inp.calls:
            await self.store.record_tool_calls(inp.agent, inp.session_key, inp.calls)

    @activity.defn
    @escalating
    async def budget_status(self, inp: BudgetInput) -> BudgetStatus:
        """The hard budgets in force for this agent today (tether.toml, raised by verified
        founder orders), and what the other sessions spent against them."""
        day = inp.at.date()
        rows = await self.store.budget_orders(
            [budgets.agent_scope(inp.agent, day), budgets.team_scope(day)]
        )
        daily, monthly, raises = budgets.limits(self.config, inp.agent, day, rows)
        today, month = await self.store.budget_spend(
            inp.agent, day, excluding_session=inp.session_key
        )
        return BudgetStatus(
            day=day.isoformat(),
            month=f"{day:%Y-%m}",
            agent_daily_usd=daily,
            team_monthly_usd=monthly,
            others_today_usd=today,
            others_month_usd=month,
            raises=raises,
        )

    @activity.defn
    @escalating
    async def remind_expiring_credentials(self, inp: ExpiryReminderInput) -> list[str]:
        """Remind the founder of credentials expiring within the configured days, once per
        credential, expiry date and threshold (the tightest threshold crossed). Returns the
        keys of reminders posted now."""
        observed = {s.name: s.expires_at for s in await self.store.credential_statuses()}
        days = self.config.notifications.expiry_reminder_days
        posted = []
        for name, ref in self.config.credentials.items():
            candidates = [observed.get(name), declared_expiry(ref.expires)]
            if ref.kind == "jwt":
                with contextlib.suppress(SecretUnavailable, ValueError):
                    candidates.append(jwt_expiry(read_secret(ref)))
            known = [c for c in candidates if c is not None]
            if not known:
                continue
            expires = min(known)
            left = expires - inp.now
            if left <= timedelta(0):
                stage, title = "expired", f"credential {name} expired on {expires:%Y-%m-%d}"
            else:
                crossed = [d for d in days if left <= timedelta(days=d)]
                if not crossed:
                    continue
                stage = f"{min(crossed)}d"
                title = f"credential {name} expires in {_days(left)} ({expires:%Y-%m-%d %H:%M} UTC)"
            key = f"expiry:{name}:{expires:%Y-%m-%dT%H:%M}:{stage}"
            item = InboxItem(
                key=key,
                kind="credential_expiring",
                subject=name,
                title=title,
                detail={"credential": name, "expires_at": expires.isoformat(), "stage": stage},
                # A notice: rotate the credential, then acknowledge it (`tether inbox done`).
            )
            _, new = await notify(self.store, self.config.notifications, item)
            if new:
                posted.append(key)
        return posted


def _days(left: timedelta) -> str:
    if left < timedelta(days=1):
        return f"{max(1, int(left.total_seconds() // 3600))} hours"
    return f"{left.days} days"
