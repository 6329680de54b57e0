"""The cockpit on a terminal: `tether status` and `tether inbox`, in colour when it is one.
Plain data in (the JSON forms), the standard library only: cli/cockpit.py imports this."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TextIO

from tether.names import inbox_command, inbox_see


class InboxEntry(Protocol):
    """What the inbox shows of an item: InboxItem, or a row read without pydantic."""

    @property
    def id(self) -> int | None: ...
    @property
    def kind(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def cleared_at(self) -> datetime | None: ...
    @property
    def action(self) -> str: ...
    @property
    def detail(self) -> Mapping[str, Any]: ...


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


def _when(value: str | None, fmt: str) -> str:
    """A JSON-mode datetime (ISO 8601) as `fmt`; "-" when there is none."""
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime(fmt)


def render_status(report: Mapping[str, Any], colour: bool = False) -> str:
    """The status report in its JSON form (tether.status.build, then reads.jsonable)."""
    paint = _Paint(colour)

    def state(value: str) -> str:
        return paint(value, _STATE_STYLE.get(value, ""))

    when = _when(report["generated_at"], "%Y-%m-%d %H:%M:%S")
    lines = [paint(f"Tether status at {when} UTC", "bold")]
    if report["inbox_open"]:
        lines.append(paint(f"{report['inbox_open']} item(s) wait for you: tether inbox", "yellow"))
    if report["refused_total"]:
        lines.append(
            paint(
                f"{report['refused_total']} message(s) refused for their sender (forged, "
                "replayed or unsealed) in the last 30 days; the latest:",
                "red",
            )
        )
        lines += [f"  {line}" for line in report["refused_recent"]]

    lines.append("")
    lines.append(
        paint("Agents", "bold") + "  (context and cost as of each session's last ledger write, "
        "up to 60 s behind)"
    )
    # PSEUDO-WORK: sessions flagged / sessions ended, over the last 30 days.
    rows = [["AGENT", "SESSION", "TASK", "CONTEXT", "COST", "PSEUDO-WORK 30D", "RUN", "NOTE"]]
    for a in sorted(report["agents"], key=lambda a: a["agent"]):
        note = a["hold"] or a["blocker"] or ""
        if len(note) > 70:  # the whole reason is under Blockers
            note = note[:69] + "…"
        pseudo = f"{a['pseudo_work']}/{a['sessions_ended']}" if a["sessions_ended"] else "-"
        if a["pseudo_work"]:
            pseudo = paint(pseudo, "red")
        ended = a["session"] == "ended"
        rows.append(
            [
                a["agent"],
                state(a["session"]) if a["session"] else "-",
                a["task_id"] or "-",
                _pct(a["context_pct"]) if not ended else "-",
                _usd(a["cost_usd"]) if not ended else "-",
                pseudo,
                paint(f"{a['run']} (unsandboxed)", "red") if a["unsandboxed"] else a["run"] or "-",
                paint(note, "red") if note else note,
            ]
        )
    lines += _table(rows) if len(rows) > 1 else ["  no agent has had a session yet"]

    lines.append("")
    counts = ", ".join(f"{state(s)} {n}" for s, n in sorted(report["task_counts"].items()))
    lines.append(paint("Tasks", "bold") + (f"  ({counts})" if counts else ""))
    rows = [["TASK", "STATE", "ASSIGNEE", "TITLE"]]
    for t in report["tasks"]:
        rows.append([t["id"], state(t["state"]), t["assignee"] or "-", t["title"][:60]])
    lines += _table(rows) if len(rows) > 1 else ["  no open task"]

    lines.append("")
    lines.append(paint("Running", "bold"))
    rows = [["SERVICE", "ENV", "COMMIT", "REF", "SINCE", "DEPLOYMENT"]]
    for r in report["running"]:
        rows.append(
            [
                r["service"],
                r["environment"],
                r["commit"][:12],
                r["ref"] or "-",
                _when(r["since"], "%Y-%m-%d %H:%M"),
                r["deployment_id"] or "-",
            ]
        )
    lines += _table(rows) if len(rows) > 1 else ["  nothing deployed yet"]

    lines.append("")
    lines.append(paint("Deployments (last 24 h)", "bold"))
    rows = [["DEPLOYMENT", "SERVICE", "ENV", "STATE", "REF", "AGENT"]]
    for d in report["deployments"]:
        ref = f"{d['ref']} {d['commit'][:8]}" if d["ref"] and d["commit"] else d["ref"]
        rows.append(
            [
                d["deployment_id"],
                d["service"],
                d["environment"],
                state(d["state"]),
                ref or "-",
                d["agent"] or "-",
            ]
        )
    lines += _table(rows) if len(rows) > 1 else ["  none"]
    for q in report["queues"]:
        waiting = ", ".join(q["waiting"]) or "nobody"
        lines.append(
            f"  lock {q['service']}: held by {q['holder'] or 'nobody'}; waiting: {waiting}"
        )

    if report["budgets"]:
        lines.append("")
        lines.append(
            paint("Budgets (UTC; spend as written to the ledger, up to 60 s behind)", "bold")
        )
        lines += render_budgets(report["budgets"], paint)

    for title, items, style in (
        ("Blockers", report["blockers"], "red"),
        ("Pseudo-work flags (last 7 days)", report["pseudo_work"], "yellow"),
    ):
        lines.append("")
        lines.append(paint(title, "bold"))
        lines += [f"  {paint('!', style)} {b}" for b in items] or ["  none"]

    lines.append("")
    lines.append(paint("Credentials", "bold"))
    if not report["credentials"]:
        lines.append("  all probed credentials are valid and none expires within 14 days")
    for c in report["credentials"]:
        if not c["ok"]:
            lines.append(f"  {paint('!', 'red')} {c['name']}: {c['reason'] or 'rejected'}")
        elif c["days_left"] is not None and c["expires_at"] is not None:
            days = c["days_left"]
            left = "expired" if days <= 0 else f"expires in {days:.1f} days"
            on = _when(c["expires_at"], "%Y-%m-%d")
            lines.append(f"  {paint('!', 'yellow')} {c['name']}: {left} ({on})")

    if report["problems"]:
        lines.append("")
        lines.append(paint("Could not read", "bold"))
        lines += [f"  {p}" for p in report["problems"]]
    return "\n".join(lines)


def render_inbox(items: Sequence[InboxEntry], colour: bool = False) -> str:
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
            command, see = inbox_command(item.action, item.id), inbox_see(item.detail)
            lines.append(f"    -> {paint(command, 'bold')}")
            if see and see != command:
                lines.append(f"       see: {see}")
    return "\n".join(lines)


_URGENT = frozenset(
    {
        "credential_blocked",
        "loop_blocked",
        "cost_paused",
        "budget_exceeded",
        "run_failed",
        "deploy_approval",
        "deploy_failed",
    }
)


def render_budgets(budgets: Sequence[Mapping[str, Any]], paint: _Paint | None = None) -> list[str]:
    """One row per hard budget (BudgetLine's JSON form): spent against the limit in force, over
    ones in red."""
    paint = paint or _Paint(False)
    if not budgets:
        return ["  no budget is configured ([budget] in tether.toml)"]
    rows = [["BUDGET", "PERIOD", "SPENT", "LIMIT", "USED", "RAISED"]]
    for b in budgets:
        used = b["spent_usd"] / b["limit_usd"] if b["limit_usd"] else 0.0
        style = "red" if used > 1 else "yellow" if used >= 0.8 else ""
        what = f"{b['name']} daily" if b["scope"] == "agent" else "team monthly"
        rows.append(
            [
                what,
                b["period"],
                _usd(b["spent_usd"]),
                _usd(b["limit_usd"]),
                paint(f"{used:.0%}", style) if style else f"{used:.0%}",
                b["raised"] or "-",
            ]
        )
    return _table(rows)


def stdout_colour(choice: str) -> bool:
    return use_colour(sys.stdout, choice)
