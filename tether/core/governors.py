"""The session governors, as pure functions over the state the session workflow carries.

- Memory: context usage crossing `compact` / `trim` / `handoff` (70/85/95% by default) gives
  that directive once per crossing. A stage re-arms only when usage falls `rearm_margin` below
  it, or after a compaction; a jump over several stages gives the highest one only.
- Anti-loop: a failing tool call is counted per fingerprint (tool, action, normalised error
  signature). The limit (5) without a success of the same action in between holds the work.
  The very same input with a different output is progress (a poll), not a loop.
- Cost: spend is priced per model and added to the task's; above `cost_warn_ratio` times the
  rolling average of completed tasks the agent and founder are warned, above `cost_pause_ratio`
  the task is paused until the founder resumes it. With too little history, the absolute
  ceiling applies. After a resume the next pause comes at twice the cost at the resume.
- Budget: hard limits per agent per UTC day and for the team per UTC month. The other
  sessions' spend (read from the ledger at start and at each flush) plus this session's own
  spend in the period above a limit holds the agent, whatever its task, until the founder
  raises the limit with a signed order.

No I/O and no clock: the workflow passes `now` and performs the side effects the result names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import JsonValue

from tether.contracts import (
    CostBaseline,
    Directive,
    DirectiveRecord,
    Governor,
    Hold,
    LoopEntry,
    ProcessSpend,
    Report,
    ReportAnswer,
    RuntimeUsage,
    TestRun,
    TokenUsage,
    ToolCall,
    ToolCallRecord,
)

STAGES = ("compact", "trim", "handoff")
LOOP_WINDOW = 64
DIRECTIVES_KEPT = 50
FILES_KEPT = 30
TESTS_KEPT = 10
NOTES_KEPT = 30
UNFLUSHED_KEPT = 500
DAYS_KEPT = 40


@dataclass
class Outcome:
    """What one report changed, for the workflow to act on."""

    directives: list[Directive] = field(default_factory=list)
    # A hold that this report started (the workflow tells the founder and holds the task).
    new_hold: Hold | None = None
    cost_warning: bool = False
    handoff: bool = False

    def answer(self, gov: Governor) -> ReportAnswer:
        deny = hold_message(gov.hold) if gov.hold else None
        if self.handoff:
            deny = deny or (
                "Tether handed this session off (context full): end it now; the next session "
                "starts with the handoff brief"
            )
        return ReportAnswer(
            directives=self.directives,
            deny=deny,
            context_pct=gov.context_pct,
            reports=gov.reports,
        )


def hold_message(hold: Hold) -> str:
    if hold.kind == "loop":
        return (
            f"stopped by Tether: {hold.reason}. The founder has been told"
            + (f" and task {hold.task_id} is blocked" if hold.task_id else "")
            + ". Do not retry it: decompose the task into smaller steps you can verify, or "
            "wait for the founder"
        )
    if hold.kind == "budget":
        return (
            f"stopped by Tether: {hold.reason}. No more model turns until the founder raises "
            "the budget; stop here"
        )
    return (
        f"paused by Tether: {hold.reason}. Wait for the founder (tether resume "
        f"{hold.task_id or 'TASK'})"
    )


def _threshold(gov: Governor, stage: str) -> float:
    limits = gov.limits
    return {"compact": limits.compact, "trim": limits.trim, "handoff": limits.handoff}[stage]


def _directive_text(stage: str, pct: float, tokens: int, window: int) -> str:
    full = f"Tether: your context is {pct:.0%} full ({tokens:,} of {window:,} usable tokens)."
    if stage == "compact":
        return (
            f"{full} Compact now: summarise the older turns in a few lines; keep the recent tool "
            "outputs, your decisions and the files you are editing word for word."
        )
    if stage == "trim":
        return (
            f"{full} Trim now: drop cached tool output and file contents you no longer need, "
            "do not re-read large files, and keep only the essential rules of your task."
        )
    return (
        f"{full} Tether archived this session's state (decisions, files, tests, task, open "
        "questions) as a handoff. Stop here and end this session: the next session starts with "
        "the handoff brief."
    )


def _record(gov: Governor, outcome: Outcome, directive: Directive, now: datetime) -> None:
    outcome.directives.append(directive)
    gov.directive_counts[directive.kind] = gov.directive_counts.get(directive.kind, 0) + 1
    gov.directives.append(
        DirectiveRecord(
            kind=directive.kind,
            report=gov.reports,
            at=now,
            context_pct=gov.context_pct,
            cost_usd=round(gov.cost_usd, 6),
        )
    )
    del gov.directives[:-DIRECTIVES_KEPT]


def _memory(gov: Governor, report: Report, outcome: Outcome, now: datetime) -> None:
    if report.compacted:
        gov.compactions += 1
        gov.fired = []
        gov.context_tokens = gov.context_pct = None
    if report.compact_summary:
        gov.compact_summary = report.compact_summary
    if report.context_tokens is None:
        return
    full = report.context_window or gov.limits.context_window
    # The runtime's own reserve is not the agent's to use (never more than half the window).
    window = full - min(report.context_reserve or 0, full // 2)
    pct = report.context_tokens / window
    gov.context_tokens, gov.context_pct = report.context_tokens, round(pct, 4)
    margin = gov.limits.rearm_margin
    gov.fired = [s for s in gov.fired if pct >= _threshold(gov, s) - margin]
    crossed = [s for s in STAGES if pct >= _threshold(gov, s)]
    if not crossed or crossed[-1] in gov.fired:
        gov.fired = sorted(set(gov.fired) | set(crossed), key=STAGES.index)
        return
    stage = crossed[-1]
    gov.fired = sorted(set(gov.fired) | set(crossed), key=STAGES.index)
    _record(
        gov,
        outcome,
        Directive(kind=stage, text=_directive_text(stage, pct, report.context_tokens, window)),
        now,
    )
    outcome.handoff = stage == "handoff"


def _priced(gov: Governor, usage: dict[str, TokenUsage]) -> tuple[float, TokenUsage]:
    """(USD at Tether's prices, the tokens summed over models)."""
    priced = 0.0
    total = TokenUsage()
    for model, counts in usage.items():
        total = total.add(counts)
        price = gov.limits.price(model)
        if price is not None:
            priced += price.cost(counts)
    return priced, total


def _spend(gov: Governor, report: Report, task_key: str, now: datetime) -> None:
    priced, total = _priced(gov, report.usage)
    # Tether prices the tokens itself; a runtime's own figure can raise that, never lower it
    # (a report claiming $0 for priced usage would erase spend).
    usd = max(priced, report.cost_usd or 0.0)
    proc = gov.process
    if proc is None:
        _add_spend(gov, usd, total, task_key, now)
        return
    proc.hook_usd += usd
    proc.hook_tokens = proc.hook_tokens.add(total)
    proc.hook_context = proc.hook_context or report.context_tokens is not None
    _count_process(gov, proc, task_key, now)


def _count_process(gov: Governor, proc: ProcessSpend, task_key: str, now: datetime) -> None:
    """Count what the process's larger source says beyond what was counted already."""
    usd = max(proc.hook_usd, proc.runtime_usd)
    tokens = proc.hook_tokens.most(proc.runtime_tokens)
    _add_spend(
        gov,
        max(usd - proc.counted_usd, 0.0),
        tokens.less(proc.counted_tokens),
        task_key,
        now,
    )
    proc.counted_usd = max(usd, proc.counted_usd)
    proc.counted_tokens = tokens.most(proc.counted_tokens)


def _add_spend(gov: Governor, usd: float, total: TokenUsage, task_key: str, now: datetime) -> None:
    gov.tokens = gov.tokens.add(total)
    gov.cost_usd += usd
    if usd:
        day = now.date().isoformat()
        gov.day_costs[day] = gov.day_costs.get(day, 0.0) + usd
        for old in sorted(gov.day_costs)[:-DAYS_KEPT]:
            del gov.day_costs[old]
    if usd or total.total():
        gov.task_costs[task_key] = gov.task_costs.get(task_key, 0.0) + usd
        gov.task_tokens[task_key] = gov.task_tokens.get(task_key, TokenUsage()).add(total)


def begin_process(gov: Governor, process: str) -> None:
    """Tether starts one of the agent's processes: its spend is reconciled from here."""
    gov.process = ProcessSpend(process=process)


def _track(gov: Governor, call: ToolCall, task_id: str | None, now: datetime) -> None:
    gov.unflushed.append(ToolCallRecord(seq=gov.tool_calls, at=now, task_id=task_id, call=call))
    del gov.unflushed[:-UNFLUSHED_KEPT]
    if call.file_path:
        gov.files = [f for f in gov.files if f != call.file_path] + [call.file_path]
        del gov.files[:-FILES_KEPT]
    if call.test:
        summary = call.test_summary or (call.error if not call.ok else "")
        gov.tests.append(TestRun(command=call.test, ok=call.ok, summary=summary, at=now))
        del gov.tests[:-TESTS_KEPT]


def _loop(
    gov: Governor, call: ToolCall, task_id: str | None, outcome: Outcome, now: datetime
) -> None:
    if call.ok:
        # A success of the same action ends its failure streaks.
        gov.loop = {
            fp: e
            for fp, e in gov.loop.items()
            if not (e.tool == call.tool and e.action == call.action)
        }
        return
    gov.failures += 1
    fp = call.fingerprint()
    entry = gov.loop.get(fp)
    if entry is None:
        entry = LoopEntry(
            tool=call.tool, action=call.action, signature=call.signature, first_at=now
        )
        gov.loop[fp] = entry
    progress = (
        entry.count > 0
        and call.input_digest != ""
        and entry.last_input == call.input_digest
        and entry.last_output != call.output_digest
    )
    entry.count = 1 if progress else entry.count + 1
    entry.error = call.error or entry.error
    entry.last_input, entry.last_output = call.input_digest, call.output_digest
    entry.last_at, entry.last_report = now, gov.reports
    if len(gov.loop) > LOOP_WINDOW:
        oldest = min(gov.loop, key=lambda k: gov.loop[k].last_report)
        del gov.loop[oldest]
    if entry.count >= gov.limits.loop_limit and gov.hold is None:
        what = describe_action(call.tool, call.action)
        error = entry.error or entry.signature
        evidence: dict[str, JsonValue] = {
            "tool": call.tool,
            "action": call.action,
            "error": error,
            "signature": entry.signature,
            "count": entry.count,
            "first_at": entry.first_at.isoformat() if entry.first_at else None,
            "last_at": now.isoformat(),
        }
        gov.hold = Hold(
            kind="loop",
            reason=f"{what} failed {entry.count} times the same way ({error})",
            since=now,
            task_id=task_id,
            evidence=evidence,
        )
        outcome.new_hold = gov.hold
        _record(gov, outcome, Directive(kind="loop_stop", text=hold_message(gov.hold)), now)


def describe_action(tool: str, action: str) -> str:
    """`kubectl set` for a shell command, `Edit api/x.py` for a file tool."""
    rest = action.removeprefix(f"{tool}:") if action.startswith(f"{tool}:") else ""
    if tool == "Bash" and rest:
        return rest
    return f"{tool} {rest}".strip() if rest else (action or tool)


def task_cost(gov: Governor, task_id: str) -> float:
    before = gov.baseline.task_before_usd if gov.baseline else 0.0
    return before + gov.task_costs.get(task_id, 0.0)


def cost_limits(gov: Governor) -> tuple[float, float, str]:
    """(warn above, pause above, what they are based on) for the current task."""
    limits, baseline = gov.limits, gov.baseline or CostBaseline()
    if baseline.average_usd is not None:
        warn = baseline.average_usd * limits.cost_warn_ratio
        pause = baseline.average_usd * limits.cost_pause_ratio
        basis = (
            f"the average of {baseline.tasks} completed tasks "
            f"({baseline.basis}), ${baseline.average_usd:.2f}"
        )
    else:
        pause = limits.cost_ceiling_usd
        warn = pause * limits.cost_warn_ratio / limits.cost_pause_ratio
        basis = f"the ceiling of ${pause:.2f} (too few completed tasks for an average)"
    if gov.pause_at_usd is not None:
        pause = gov.pause_at_usd
    return warn, pause, basis


def cost_terms(gov: Governor) -> str:
    """Where the warning and the pause fall and what they are based on, in the words every
    message uses (the agent's directive, the founder's inbox): the same numbers everywhere."""
    warn, pause, basis = cost_limits(gov)
    limits = gov.limits
    if gov.baseline is not None and gov.baseline.average_usd is not None:
        based = f"{limits.cost_warn_ratio:g}x and {limits.cost_pause_ratio:g}x {basis}"
    else:
        based = "the ceiling, as too few tasks have completed for an average"
    if gov.pause_at_usd is not None:
        based += "; the pause moved to twice the cost at the founder's resume"
    return f"warned above ${warn:.2f} and paused above ${pause:.2f}, {based}"


def _cost(gov: Governor, task_id: str | None, outcome: Outcome, now: datetime) -> None:
    if task_id is None or gov.baseline is None or gov.cost_stage == "paused":
        return
    spent = task_cost(gov, task_id)
    warn, pause, basis = cost_limits(gov)
    if spent > pause:
        gov.cost_stage = "paused"
        evidence: dict[str, JsonValue] = {
            "task_id": task_id,
            "cost_usd": round(spent, 4),
            "pause_above_usd": round(pause, 4),
            "basis": basis,
        }
        if gov.hold is None:
            gov.hold = Hold(
                kind="cost",
                reason=f"task {task_id} has cost ${spent:.2f}, above ${pause:.2f} ({basis})",
                since=now,
                task_id=task_id,
                evidence=evidence,
            )
            outcome.new_hold = gov.hold
            _record(gov, outcome, Directive(kind="cost_pause", text=hold_message(gov.hold)), now)
    elif spent > warn and gov.cost_stage == "":
        gov.cost_stage = "warned"
        outcome.cost_warning = True
        _record(
            gov,
            outcome,
            Directive(
                kind="cost_warning",
                text=(
                    f"Tether: task {task_id} has cost ${spent:.2f}: {cost_terms(gov)}. The "
                    "founder has been told. Finish the smallest useful step."
                ),
            ),
            now,
        )


# Report update ids a session remembers (a hook sends a report again at its next call), each
# by a short digest: the list travels in every continue-as-new and every view of the session.
REMEMBERED_REPORTS = 128


def already_applied(gov: Governor, update_id: str | None) -> bool:
    """Whether the report with this update id was applied (in this run or one before it);
    records it when it was not."""
    if not update_id:
        return False
    digest = hashlib.sha256(update_id.encode()).hexdigest()[:16]
    if digest in gov.applied:
        return True
    gov.applied.append(digest)
    del gov.applied[:-REMEMBERED_REPORTS]
    return False


def apply_report(gov: Governor, report: Report, task_id: str | None, now: datetime) -> Outcome:
    """Count one report into the governor state; return what must happen because of it."""
    outcome = Outcome()
    gov.reports += 1
    _spend(gov, report, task_id or "", now)
    _memory(gov, report, outcome, now)
    if report.tool_call is not None:
        gov.tool_calls += 1
        _track(gov, report.tool_call, task_id, now)
        _loop(gov, report.tool_call, task_id, outcome, now)
    _cost(gov, task_id, outcome, now)
    _budget(gov, outcome, now)
    return outcome


def _budget(gov: Governor, outcome: Outcome, now: datetime) -> None:
    if gov.hold is None and (held := check_budget(gov, now)) is not None:
        outcome.new_hold = held
        _record(gov, outcome, Directive(kind="budget_stop", text=hold_message(held)), now)


def apply_runtime(
    gov: Governor, usage: RuntimeUsage, task_id: str | None, now: datetime
) -> Outcome:
    """Count the runtime's own figures for the process Tether runs (cumulative): its spend
    where it says more than the hooks did, and its context usage; then the same stages, cost
    and budget rules as a report. A figure of a process that is not the current one is late:
    nothing of it counts."""
    outcome = Outcome()
    proc = gov.process
    if proc is None or proc.process != usage.process:
        return outcome
    gov.reports += 1
    priced, total = _priced(gov, usage.usage)
    proc.runtime_usd = max(proc.runtime_usd, priced, usage.cost_usd or 0.0)
    proc.runtime_tokens = proc.runtime_tokens.most(total)
    _count_process(gov, proc, task_id or "", now)
    if not proc.hook_context:
        context = Report(context_tokens=usage.context_tokens, context_window=usage.context_window)
        _memory(gov, context, outcome, now)
    _cost(gov, task_id, outcome, now)
    _budget(gov, outcome, now)
    return outcome


def budget_spend(gov: Governor, now: datetime) -> tuple[float, float]:
    """(the agent's spend today, the team's this month), UTC: the other sessions' as last read
    plus this session's own. A period the last read was not for counts others as 0 until the
    next read (at most one flush later)."""
    day, month = now.date().isoformat(), now.strftime("%Y-%m")
    own_today = gov.day_costs.get(day, 0.0)
    own_month = sum(usd for d, usd in gov.day_costs.items() if d.startswith(month))
    b = gov.budget
    others_today = b.others_today_usd if b is not None and b.day == day else 0.0
    others_month = b.others_month_usd if b is not None and b.month == month else 0.0
    return others_today + own_today, others_month + own_month


def over_budget(gov: Governor, now: datetime) -> tuple[str, dict[str, JsonValue]] | None:
    """(why, evidence) when the agent's spend today or the team's this month is above a hard
    budget as last read; None otherwise."""
    b = gov.budget
    if b is None:
        return None
    today, month = budget_spend(gov, now)
    evidence: dict[str, JsonValue] = {"day": b.day, "month": b.month}
    if b.agent_daily_usd is not None and today > b.agent_daily_usd:
        reason = (
            f"it has spent ${today:.2f} today (UTC), above its daily budget of "
            f"${b.agent_daily_usd:.2f}"
        )
        evidence |= {"scope": "agent", "spent_usd": round(today, 4), "limit_usd": b.agent_daily_usd}
        return reason, evidence
    if b.team_monthly_usd is not None and month > b.team_monthly_usd:
        reason = (
            f"the team has spent ${month:.2f} this month (UTC), above its monthly budget of "
            f"${b.team_monthly_usd:.2f}"
        )
        evidence |= {"scope": "team", "spent_usd": round(month, 4), "limit_usd": b.team_monthly_usd}
        return reason, evidence
    return None


def check_budget(gov: Governor, now: datetime) -> Hold | None:
    """Hold the agent (a new hold, returned) when it is over a hard budget and not held yet."""
    if gov.hold is not None or (over := over_budget(gov, now)) is None:
        return None
    reason, evidence = over
    gov.hold = Hold(kind="budget", reason=reason, since=now, task_id=None, evidence=evidence)
    return gov.hold


def release(gov: Governor, task_id: str | None) -> Hold | None:
    """The founder released the hold; returns the hold that was cleared."""
    hold = gov.hold
    if hold is None:
        return None
    gov.hold = None
    if hold.kind == "loop":
        # The failures that caused it no longer count: the founder looked at them.
        gov.loop = {}
    elif hold.kind == "cost" and task_id is not None:
        gov.cost_stage = "warned"
        gov.pause_at_usd = max(task_cost(gov, task_id), cost_limits(gov)[1]) * 2
    return hold


def change_task(gov: Governor) -> None:
    """The session works on another task now: its cost is compared afresh."""
    gov.baseline = None
    gov.cost_stage = ""
    gov.pause_at_usd = None


def handoff_brief(
    agent: str,
    started_at: datetime | None,
    task_id: str | None,
    gov: Governor,
) -> tuple[str, dict[str, JsonValue]]:
    """The brief the next session starts with, and the same as structured state."""
    decisions = [n.removeprefix("decision: ") for n in gov.notes if n.startswith("decision: ")]
    questions = [n.removeprefix("question: ") for n in gov.notes if n.startswith("question: ")]
    other = [n.removeprefix("note: ") for n in gov.notes if n.startswith("note: ")]
    failing = sorted(gov.loop.values(), key=lambda e: -e.last_report)[:5]
    started = f" started {started_at:%Y-%m-%d %H:%M} UTC" if started_at else ""
    lines = [
        f"{agent}'s session{started} handed off with its context "
        f"{gov.context_pct or 0:.0%} full, after {gov.tool_calls} tool calls."
    ]
    if task_id:
        lines.append(f"Task you hold: {task_id} (spent ${task_cost(gov, task_id):.2f} so far).")
    sections: list[tuple[str, list[str]]] = [
        ("Decisions", decisions),
        ("Open questions", questions),
        ("Notes", other),
        ("Files being edited", gov.files[-15:]),
        (
            "Tests being tracked",
            [
                f"{t.command} — {'passing' if t.ok else 'FAILING'} {t.summary}".strip()
                for t in gov.tests
            ],
        ),
        (
            "Failing actions (do not repeat them)",
            [
                f"{describe_action(e.tool, e.action)} failed {e.count}x: {e.error or e.signature}"
                for e in failing
            ],
        ),
    ]
    for title, items in sections:
        if items:
            lines.append(f"{title}:")
            lines += [f"- {item}" for item in items]
    if gov.compact_summary:
        lines += ["Summary of the conversation so far:", gov.compact_summary.strip()[:4000]]
    state: dict[str, JsonValue] = {
        "task_id": task_id,
        "decisions": list(decisions),
        "open_questions": list(questions),
        "notes": list(other),
        "files": list(gov.files),
        "tests": [t.model_dump(mode="json") for t in gov.tests],
        "failing_actions": [e.model_dump(mode="json") for e in failing],
        "context_pct": gov.context_pct,
        "tool_calls": gov.tool_calls,
        "cost_usd": round(gov.cost_usd, 6),
        "compact_summary": gov.compact_summary,
    }
    return "\n".join(lines), state
