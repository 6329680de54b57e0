"""The startup brief: from ground truth to what one agent is told. Pure and deterministic, so the
session workflow composes it itself.

Rules: the agent's own tasks come first, then the best open task for it; work already in flight
elsewhere (a task someone holds, an open task another agent's pull request is already about) is
never offered. Pull requests of different agents touching the same files, and a pull request
about a task someone else holds, are overlaps: flagged in the brief and to the founder.
"""

from __future__ import annotations

import itertools
import re

from tether.contracts import (
    Brief,
    GroundTruth,
    Overlap,
    PullRequestInfo,
    TaskState,
    TaskSummary,
)

# Claude Code caps hook output at 10,000 characters; stay below with room for the header.
MAX_BRIEF_CHARS = 9000
MAX_LISTED = 10
_IN_FLIGHT = (TaskState.CLAIMED, TaskState.VERIFYING)
_OWN = (TaskState.CLAIMED, TaskState.VERIFYING, TaskState.BLOCKED, TaskState.PAUSED)


def mentions(text: str, task_id: str) -> bool:
    return re.search(rf"(?<![a-z0-9]){re.escape(task_id)}(?![a-z0-9])", text.lower()) is not None


def _pr_owner(pr: PullRequestInfo) -> str:
    return pr.agent or pr.author


def _pr_is_about(pr: PullRequestInfo, task: TaskSummary) -> bool:
    if mentions(pr.branch, task.id) or mentions(pr.title, task.id):
        return True
    art = task.artifact
    if art and art.kind == "commit" and art.path and art.repository == pr.repository:
        prefix = art.path.rstrip("/")
        return any(f == prefix or f.startswith(prefix + "/") for f in pr.files)
    return False


def find_overlaps(truth: GroundTruth) -> list[Overlap]:
    overlaps = []
    prs = sorted(truth.pull_requests, key=lambda p: (p.repository, p.number))
    for a, b in itertools.combinations(prs, 2):
        if a.repository != b.repository or _pr_owner(a) == _pr_owner(b):
            continue
        shared = sorted(set(a.files) & set(b.files))
        if shared:
            overlaps.append(
                Overlap(
                    kind="pr_files",
                    summary=(
                        f"{a.repository}: PR #{a.number} ({_pr_owner(a)}) and PR #{b.number} "
                        f"({_pr_owner(b)}) both change {', '.join(shared[:5])}"
                    ),
                    agents=[_pr_owner(a), _pr_owner(b)],
                    pull_requests=[a.number, b.number],
                    files=shared[:MAX_LISTED],
                )
            )
    for pr in prs:
        for task in truth.tasks:
            if (
                task.state in _IN_FLIGHT
                and task.assignee
                and task.assignee != _pr_owner(pr)
                and _pr_is_about(pr, task)
            ):
                overlaps.append(
                    Overlap(
                        kind="pr_task",
                        summary=(
                            f"{pr.repository}: PR #{pr.number} by {_pr_owner(pr)} is about task "
                            f"{task.id}, which {task.assignee} holds"
                        ),
                        agents=[_pr_owner(pr), task.assignee],
                        pull_requests=[pr.number],
                        task_id=task.id,
                    )
                )
    return overlaps


def compose_brief(
    agent: str,
    repositories: list[str],
    truth: GroundTruth,
    warnings: list[str] | None = None,
    login: str | None = None,
) -> Brief:
    me = {agent, login or agent}
    own = [t for t in truth.tasks if t.assignee == agent and t.state in _OWN]
    in_flight = [t for t in truth.tasks if t.state in _IN_FLIGHT and t.assignee not in me]
    others_prs = [p for p in truth.pull_requests if _pr_owner(p) not in me and p.author not in me]

    withheld: dict[str, str] = {}
    candidates = []
    for task in truth.tasks:
        if task.state != TaskState.OPEN or task.assignee not in (None, agent):
            continue
        busy = next((p for p in others_prs if _pr_is_about(p, task)), None)
        if busy is not None:
            withheld[task.id] = (
                f"PR #{busy.number} in {busy.repository} by {_pr_owner(busy)} is already about it"
            )
            continue
        candidates.append(task)

    def rank(task: TaskSummary) -> tuple[int, int, float, str]:
        mine = 0 if task.assignee == agent else 1
        art = task.artifact
        near = 0 if art and art.repository in repositories else 1
        created = task.created_at.timestamp() if task.created_at else float("inf")
        return (mine, near, created, task.id)

    offered = min(candidates, key=rank) if candidates else None
    brief = Brief(
        agent=agent,
        own_tasks=own,
        offered=offered,
        withheld=withheld,
        others_in_flight=in_flight,
        others_pull_requests=others_prs,
        others_commits=truth.commits[:MAX_LISTED],
        overlaps=find_overlaps(truth),
        handoff=truth.handoff,
        warnings=[*truth.problems, *(warnings or [])],
    )
    return brief.model_copy(update={"text": render_brief(brief)})


def _task_line(t: TaskSummary) -> str:
    who = f" (held by {t.assignee})" if t.assignee and t.state in _IN_FLIGHT else ""
    return f"- {t.id} [{t.state}]{who}: {t.title}"


def render_brief(brief: Brief) -> str:
    out: list[str] = []
    if brief.handoff:
        out += ["Handoff from your previous session:", brief.handoff.strip(), ""]
    out.append(
        f"Tether startup brief for {brief.agent} (facts read from git, the forge and the "
        "task table at session start)."
    )
    if brief.own_tasks:
        out += ["", "Your tasks:"] + [_task_line(t) for t in brief.own_tasks]
    if brief.offered:
        t = brief.offered
        out += [
            "",
            f"Best open task for you: {t.id}: {t.title}",
            f"  Claim it before starting: tether task claim {t.id} --agent {brief.agent}",
        ]
    elif not brief.own_tasks:
        out += ["", "No open task is available for you."]
    if brief.others_in_flight:
        out += ["", "In flight elsewhere (do not start these):"]
        out += [_task_line(t) for t in brief.others_in_flight[:MAX_LISTED]]
    if brief.withheld:
        out += ["", "Open but already being worked on (not offered):"]
        out += [f"- {tid}: {why}" for tid, why in list(brief.withheld.items())[:MAX_LISTED]]
    if brief.others_pull_requests:
        out += ["", "Open pull requests by others:"]
        for p in brief.others_pull_requests[:MAX_LISTED]:
            files = f" — {', '.join(p.files[:3])}" if p.files else ""
            out.append(
                f"- {p.repository}#{p.number} {p.branch} by {_pr_owner(p)}: {p.title}{files}"
            )
    if brief.overlaps:
        out += ["", "Overlaps (the founder has been told):"]
        out += [f"- {o.summary}" for o in brief.overlaps[:MAX_LISTED]]
    if brief.others_commits:
        out += ["", "Recent commits:"]
        for c in brief.others_commits[:MAX_LISTED]:
            out.append(f"- {c.repository} {c.branch} {c.sha[:9]} {c.author}: {c.subject}")
    if brief.warnings:
        out += ["", "Could not be checked:"] + [f"- {w}" for w in brief.warnings]
    text = "\n".join(out)
    if len(text) > MAX_BRIEF_CHARS:
        text = text[: MAX_BRIEF_CHARS - 40].rstrip() + "\n… (brief truncated)"
    return text
