"""What a session tells the founder: each inbox item's key, wording and one command.

Pure and deterministic, so the session workflow only decides *when* to tell. The key makes
an item idempotent (the same event twice is one row); an item with an `action` is cleared by
doing it, a notice by `tether inbox done`, and `detail.see` names where to read more.
"""

from __future__ import annotations

import math

from tether.contracts import ArtifactResult, Blocker, Hold, InboxItem, Overlap, SessionView

# The inbox kind of each governor hold, also what acting on the hold clears.
HOLD_KINDS = {"loop": "loop_blocked", "cost": "cost_paused", "budget": "budget_exceeded"}

_KEY_LIMIT = 300


def cost_warning(v: SessionView, task_id: str, spent: float, terms: str) -> InboxItem:
    """`terms`: where warning and pause fall, as the agent was told (governors.cost_terms)."""
    return InboxItem(
        key=f"cost-warning:{task_id}:{v.agent}:{v.started_at}",
        kind="cost_warning",
        subject=task_id,
        title=f"task {task_id} ({v.agent}) has cost ${spent:.2f}: {terms}",
        detail={
            "task_id": task_id,
            "agent": v.agent,
            "cost_usd": round(spent, 4),
            "see": f"tether task show {task_id}",
        },
    )


def overlap(v: SessionView, found: Overlap) -> InboxItem:
    return InboxItem(
        key=f"overlap:{found.summary}"[:_KEY_LIMIT],
        kind="overlap",
        subject=v.agent,
        title=found.summary,
        detail={**found.model_dump(mode="json"), "see": "tether status"},
    )


def blocked(v: SessionView, blocker: Blocker) -> InboxItem:
    fix = (
        f"fix credential {blocker.subject}, then: tether session recheck {v.agent}"
        if blocker.kind == "credential"
        else "fix tether.toml and restart the worker"
    )
    return InboxItem(
        key=f"blocked:{v.agent}:{v.started_at}:{blocker.subject}:{blocker.reason}"[:_KEY_LIMIT],
        kind="credential_blocked",
        subject=v.agent,
        title=f"{v.agent} is blocked: {blocker.describe()}",
        detail={"credential": blocker.subject, "reason": blocker.reason},
        action=fix,
    )


def pseudo_work(v: SessionView, result: ArtifactResult) -> InboxItem:
    return InboxItem(
        key=f"pseudo:{v.agent}:{v.started_at}",
        kind="pseudo_work",
        subject=v.agent,
        title=f"{v.agent}'s session ended without a deliverable: {result.summary}",
        detail={
            "reason": v.end_reason or "",
            "artifact": result.summary,
            "see": f"tether session list --agent {v.agent}",
        },
    )


def artifact_unchecked(v: SessionView, result: ArtifactResult) -> InboxItem:
    return InboxItem(
        key=f"session-error:{v.agent}:{v.started_at}",
        kind="session_error",
        subject=v.agent,
        title=f"{v.agent}'s session ended; {result.summary}",
        detail={"see": f"tether session list --agent {v.agent}"},
    )


def hold(v: SessionView, held: Hold) -> InboxItem:
    """A loop block or a cost pause: the founder's one command lifts it."""
    kind = HOLD_KINDS[held.kind]
    if held.kind == "loop":
        action = (
            f"tether task unblock {held.task_id}"
            if held.task_id
            else f"tether session release {v.agent}"
        )
        title = f"{v.agent} is stopped in a loop: {held.reason}"
    elif held.kind == "budget":
        action = budget_raise_command(v.agent, held)
        title = f"{v.agent} is stopped by a hard budget: {held.reason}"
    else:
        action = f"tether resume {held.task_id}"
        title = f"task {held.task_id} ({v.agent}) is paused: {held.reason}"
    return InboxItem(
        key=f"{kind}:{held.task_id or v.agent}:{held.since.isoformat()}",
        kind=kind,
        subject=held.task_id or v.agent,
        title=title[:500],
        detail={"agent": v.agent, **held.evidence},
        action=action,
    )


def budget_raise_command(agent: str, held: Hold) -> str:
    """The founder's command that lifts a budget hold: the limit raised to half again what
    was spent (rounded up to whole dollars); the founder may name any higher figure."""
    spent = held.evidence.get("spent_usd")
    figure = math.ceil(float(spent) * 1.5) if isinstance(spent, int | float) else "USD"
    if held.evidence.get("scope") == "team":
        return f"tether budget raise --team-monthly {figure}"
    return f"tether budget raise --agent {agent} --daily {figure}"


def handoff_failed(v: SessionView, session_key: str, cause: str) -> InboxItem:
    return InboxItem(
        key=f"session-error:handoff:{session_key}",
        kind="session_error",
        subject=v.agent,
        title=f"{v.agent}'s handoff could not be archived: {cause}",
        detail={"see": f"tether session show {v.agent}"},
    )


def run_failed(v: SessionView, why: str) -> InboxItem:
    """Tether could not start the agent's process at all (a configuration or set-up problem)."""
    run = v.run
    which = f"{run.runtime_session}:{run.attempts}" if run else "-"
    return InboxItem(
        key=f"run-failed:{v.agent}:{which}",
        kind="run_failed",
        subject=v.agent,
        title=f"Tether could not run {v.agent}: {why}"[:500],
        detail={"see": f"tether session show {v.agent}"},
        action=f"fix it, then: tether run {v.agent}",
    )
