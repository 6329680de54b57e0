"""The founder's status report as plain data, built from the read model's rows
(tether.store.reads.status_rows): what `tether status` prints and `tether status --json` writes.

The standard library only, so that `tether status` imports neither pydantic nor the Temporal
SDK. The report's shape is `tether.client.status.StatusReport`: the models document it and
validate it, and tests/test_cockpit.py holds the two equal.

Everything comes from PostgreSQL: the open sessions keep their figures in their rows (written
when any of them but the numbers change, and with each ledger write, so context and cost are
up to 60 s behind), and the deployments keep theirs with each audit row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from tether.names import GOVERNOR, deploy_lane

# Credentials expiring within this many days are shown (the largest reminder threshold).
EXPIRY_HORIZON_DAYS = 14
DEPLOYMENTS_SINCE = timedelta(hours=24)
# Held tasks first, then the work in flight, then what waits.
TASK_ORDER = {"blocked": 0, "paused": 1, "verifying": 2, "claimed": 3, "open": 4}
FINAL_DEPLOY_STATES = frozenset({"done", "failed", "refused", "expired"})


def build(
    rows: Mapping[str, Any],
    now: datetime,
    budgets: Sequence[dict[str, Any]] = (),
    problems: Sequence[str] = (),
    horizon_days: int = EXPIRY_HORIZON_DAYS,
) -> dict[str, Any]:
    """The report, its datetimes as they are (tether.store.reads.jsonable writes them out)."""
    counts = {r["agent"]: (int(r["flagged"]), int(r["ended"])) for r in rows["ended"]}
    agents = [_agent(row, counts) for row in rows["sessions"]]
    for agent, (flagged, ended) in counts.items():
        if agent not in {a["agent"] for a in agents}:
            agents.append(_agent_without_session(agent, flagged, ended))

    tasks = sorted(
        (_task(t) for t in rows["tasks"] if t["state"] in TASK_ORDER),
        key=lambda t: (TASK_ORDER[t["state"]], t["id"]),
    )
    blockers = [
        f"task {t['id']} {t['state']}"
        + (" by Tether's governor" if t["held_by"] == GOVERNOR else "")
        + f": {t['hold_reason'] or 'no reason given'}"
        for t in tasks
        if t["state"] in ("blocked", "paused")
    ]
    for a in agents:
        if a["blocker"]:
            blockers.append(f"{a['agent']}: {a['blocker']}")
        elif a["hold"] and a["hold"].startswith("budget:"):
            blockers.append(f"{a['agent']} stopped by a hard budget{a['hold'][6:]}")

    pseudo_work = []
    for row in rows["pseudo_work"]:
        result = row["artifact_result"] or {}
        why = result.get("summary") if isinstance(result, dict) else None
        pseudo_work.append(
            f"{row['agent']} at {row['ended_at']:%Y-%m-%d %H:%M}: {why or row['end_reason']}"
        )

    credentials = []
    for c in rows["credentials"]:
        expires = c["expires_at"]
        days = (expires - now).total_seconds() / 86400 if expires else None
        if not c["ok"] or (days is not None and days <= horizon_days):
            credentials.append(
                {
                    "name": c["name"],
                    "ok": c["ok"],
                    "reason": c["reason"],
                    "expires_at": expires,
                    "days_left": days,
                }
            )

    deployments, queues = _deployments(rows["deployments"])
    return {
        "generated_at": now,
        "agents": agents,
        "task_counts": {r["state"]: int(r["n"]) for r in rows["task_counts"]},
        "tasks": tasks,
        "deployments": deployments,
        "running": [
            {
                "service": r["service"],
                "environment": r["environment"],
                "commit": r["commit"],
                "ref": r["ref"] or "",
                "deployment_id": r["deployment_id"] or "",
                "since": r["since"],
            }
            for r in rows["running"]
        ],
        "queues": queues,
        "blockers": blockers,
        "pseudo_work": pseudo_work,
        "credentials": credentials,
        "inbox_open": int(rows["inbox_open"]),
        "refused_total": int(rows["refused_total"] or 0),
        "refused_recent": [
            f"{r['at']:%Y-%m-%d %H:%M} {r['kind']} {r['handler']} to {r['workflow_id']}"
            f" ({r['role'] or 'unsealed'}{', for ' + r['agent'] if r['agent'] else ''}):"
            f" {r['reason']}"
            for r in rows["refused"]
        ],
        "budgets": list(budgets),
        "problems": list(problems),
    }


# An agent's line (AgentStatus's fields, in order) before anything is known of its session.
NO_SESSION: dict[str, Any] = {
    "agent": "",
    "session": None,
    "runtime": "",
    "started_at": None,
    "task_id": None,
    "context_pct": None,
    "cost_usd": None,
    "hold": None,
    "blocker": None,
    "pseudo_work": 0,
    "sessions_ended": 0,
    "figures_at": None,
    "run": None,
    "unsandboxed": False,
}


def _agent(row: Mapping[str, Any], counts: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """An agent's line from its latest session's row and the figures the session keeps there
    (an ended session's figures are not shown: its row says how it ended)."""
    flagged, ended = counts.get(row["agent"], (0, 0))
    agent = {
        **_agent_without_session(row["agent"], flagged, ended),
        "session": row["state"],
        "runtime": row["runtime"],
        "started_at": row["started_at"],
        "task_id": row["task_id"],
    }
    if row["state"] == "ended":
        return agent
    blocker, figures = row["blocker"], row["figures"]
    if isinstance(blocker, dict):
        agent["blocker"] = f"{blocker.get('subject')}: {blocker.get('reason')}"
    if isinstance(figures, dict):
        run = figures["run"]
        if run == "running" and figures["process"] != row["process_started"]:
            run = "queued"  # scheduled, not started: every worker runs its max_agents already
        agent.update(
            session=figures["state"],
            task_id=figures["task_id"],
            context_pct=figures["context_pct"],
            cost_usd=figures["cost_usd"],
            hold=figures["hold"],
            blocker=figures["blocker"],
            figures_at=row["figures_at"],
            run=run,
            unsandboxed=run in ("running", "restarting") and row["isolation"] == "none",
        )
    return agent


def _agent_without_session(agent: str, flagged: int, ended: int) -> dict[str, Any]:
    return {**NO_SESSION, "agent": agent, "pseudo_work": flagged, "sessions_ended": ended}


def _task(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "state": row["state"],
        "assignee": row["assignee"],
        "held_by": row["held_by"],
        "hold_reason": row["hold_reason"],
        "artifact": row["artifact"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _deployments(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The deployments of the last 24 hours, newest first, and each lane's lock queue: who
    holds it and who waits, oldest request first (from the deployments' own rows)."""
    deployments = [
        {
            "deployment_id": r["deployment_id"],
            "service": r["service"],
            "state": r["state"],
            "environment": r["environment"],
            "ref": r["ref"] or "",
            "commit": r["commit"] or None,
            "agent": r["agent"] or "",
            "reason": r["reason"] or "",
            "at": r["requested_at"],
        }
        for r in rows
    ]
    lanes: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: r["requested_at"]):
        if r["state"] in FINAL_DEPLOY_STATES or not (r["queued"] or r["holds_lock"]):
            continue
        lane = deploy_lane(r["service"], r["environment"])
        queue = lanes.setdefault(lane, {"service": lane, "holder": None, "waiting": []})
        if r["holds_lock"]:
            queue["holder"] = r["deployment_id"]
        else:
            queue["waiting"].append(r["deployment_id"])
    return deployments, [lanes[k] for k in sorted(lanes)]
