"""The governors' rules on their own: fingerprints, the transcript reader, and the pure state
machine the session workflow runs (no server needed for these; the workflow tests run them
end to end)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.payloads import FORBIDDEN, KUBECTL_RETRIES, assistant, failure, line
from tether.contracts import (
    CostBaseline,
    Governor,
    GovernorLimits,
    Price,
    Report,
    TokenUsage,
    ToolCall,
)
from tether.core import governors
from tether.hook.fingerprint import claude_code_tool_call, command_action, error_signature
from tether.hook.transcript import Cursor

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def call(event: str, payload: dict[str, Any]) -> ToolCall:
    found = claude_code_tool_call(event, payload)
    assert found is not None
    return ToolCall.model_validate(found)


def test_kubectl_variations_against_the_same_permission_error_are_one_action() -> None:
    stamps = ["", "W1126 06:31:02.123456   4242 warnings.go:70] --record is deprecated\n"]
    prints = {
        call(
            "PostToolUseFailure", failure(c, f"Exit code 1\n{stamps[i % 2]}{FORBIDDEN}")
        ).fingerprint()
        for i, c in enumerate(KUBECTL_RETRIES)
    }
    assert len(prints) == 1
    (only,) = prints
    assert only.startswith("Bash|Bash:kubectl set||Forbidden|error from server (forbidden)")

    # Piped into tee, the same failure "succeeds" (tee's exit code): still the same action.
    piped = f"{KUBECTL_RETRIES[0]} | tee out"
    masked = call(
        "PostToolUse",
        {
            "tool_name": "Bash",
            "tool_input": {"command": piped},
            "tool_response": {"stdout": FORBIDDEN, "stderr": "", "interrupted": False},
        },
    )
    assert not masked.ok and masked.fingerprint() == only
    # Reading an error in a log is not failing: grep and tail find what they were asked to.
    for reader in ("grep -r Forbidden logs/ | head -5", "tail -50 kube.log | grep Error"):
        found = call(
            "PostToolUse",
            {
                "tool_name": "Bash",
                "tool_input": {"command": reader},
                "tool_response": {"stdout": FORBIDDEN, "stderr": ""},
            },
        )
        assert found.ok, reader

    # Another error, another action, or another tool is another fingerprint.
    other_error = call(
        "PostToolUseFailure", failure(KUBECTL_RETRIES[0], "Exit code 1\nerror: no context")
    )
    other_action = call(
        "PostToolUseFailure",
        failure("kubectl rollout restart deploy/api", f"Exit code 1\n{FORBIDDEN}"),
    )
    assert other_error.fingerprint() != only and other_action.fingerprint() != only


def test_signatures_drop_what_varies_between_retries() -> None:
    a = error_signature(
        'Exit code 2\nTraceback (most recent call last):\n  File "/tmp/a/x.py", line 3\n'
        "PermissionError: [Errno 13] Permission denied: '/srv/run/7f3a9c1d2e/out.log'"
    )
    b = error_signature(
        'Exit code 2\nTraceback (most recent call last):\n  File "/tmp/b/y.py", line 9\n'
        "PermissionError: [Errno 13] Permission denied: '/srv/run/0b1c2d3e4f/out.log'"
    )
    assert a == b == "|PermissionError|permissionerror: [errno #] permission denied: '<path>'"
    assert command_action("git -C /repo push origin main") == "git push"
    assert command_action("timeout 30 pytest -q tests/") == "pytest"


def test_a_claude_code_payload_is_reduced_without_its_output() -> None:
    secretish = "token=ghp_abcdefabcdef0123456789 printed by a careless script"
    reduced = claude_code_tool_call(
        "PostToolUseFailure", failure("pytest -q", f"Exit code 1\n{secretish}\n3 failed, 2 passed")
    )
    assert reduced is not None
    assert reduced["test"] == "pytest -q" and reduced["test_summary"].startswith("3 failed")
    # The error's telling line and the test summary travel, not the whole output.
    assert "ghp_abcdef" not in json.dumps(reduced)
    assert (
        claude_code_tool_call("PostToolUseFailure", {**failure("x", "y"), "is_interrupt": True})
        is None
    )
    edit = claude_code_tool_call(
        "PostToolUse",
        {
            "tool_name": "Edit",
            "tool_input": {"file_path": "/r/app.py", "old_string": "a"},
            "tool_response": {"success": True},
        },
    )
    assert edit is not None and edit["ok"] and edit["file_path"] == "/r/app.py"


def _gov(**limits: Any) -> Governor:
    return Governor(limits=GovernorLimits(**limits))


def _fail(gov: Governor, command: str, error: str = FORBIDDEN, task: str | None = "t1"):  # type: ignore[no-untyped-def]
    c = call("PostToolUseFailure", failure(command, f"Exit code 1\n{error}"))
    return governors.apply_report(gov, Report(tool_call=c), task, NOW)


def test_the_fifth_identical_failure_holds_the_work_and_a_success_resets() -> None:
    gov = _gov()
    for command in KUBECTL_RETRIES[:4]:
        assert _fail(gov, command).new_hold is None
    # A different success in between does not reset it; a success of the same action does.
    ok_read = call("PostToolUse", {"tool_name": "Read", "tool_input": {"file_path": "/r/x"}})
    governors.apply_report(gov, Report(tool_call=ok_read), "t1", NOW)
    fifth = _fail(gov, KUBECTL_RETRIES[4])
    assert fifth.new_hold is not None and gov.hold is not None
    assert fifth.new_hold.evidence["count"] == 5
    assert "kubectl set failed 5 times the same way" in fifth.new_hold.reason
    answer = fifth.answer(gov)
    assert answer.deny and "decompose the task" in answer.deny
    assert [d.kind for d in answer.directives] == ["loop_stop"]

    fresh = _gov()
    for command in KUBECTL_RETRIES[:4]:
        _fail(fresh, command)
    ok_same = call(
        "PostToolUse",
        {"tool_name": "Bash", "tool_input": {"command": "kubectl set env deploy/api X=1"}},
    )
    governors.apply_report(fresh, Report(tool_call=ok_same), "t1", NOW)
    assert _fail(fresh, KUBECTL_RETRIES[4]).new_hold is None


def test_a_poll_whose_output_changes_is_not_a_loop() -> None:
    gov = _gov()
    poll = "kubectl rollout status deploy/api -n prod --timeout=5s"
    for ready in range(8):
        outcome = _fail(gov, poll, f"error: timed out waiting: {ready} of 8 updated replicas")
        assert outcome.new_hold is None
    # The very same output again and again is a loop, though.
    for _ in range(4):
        outcome = _fail(gov, poll, "error: timed out waiting: 7 of 8 updated replicas")
    assert outcome.new_hold is not None


def test_memory_stages_fire_once_per_crossing_with_hysteresis() -> None:
    gov = _gov(context_window=1000)
    fired: list[str] = []
    for tokens in [500, 700, 720, 690, 710, 640, 705, 850, 860, 849, 870, 950, 960]:
        outcome = governors.apply_report(gov, Report(context_tokens=tokens), None, NOW)
        fired += [d.kind for d in outcome.directives]
    # 690/710 is noise inside the re-arm margin; 640 re-arms compact, so 705 fires it again.
    assert fired == ["compact", "compact", "trim", "handoff"]
    assert gov.directive_counts == {"compact": 2, "trim": 1, "handoff": 1}

    jump = _gov(context_window=1000)
    outcome = governors.apply_report(jump, Report(context_tokens=900), None, NOW)
    assert [d.kind for d in outcome.directives] == ["trim"]  # not compact as well
    governors.apply_report(jump, Report(compacted=True), None, NOW)
    outcome = governors.apply_report(jump, Report(context_tokens=720), None, NOW)
    assert [d.kind for d in outcome.directives] == ["compact"]  # a compaction re-arms


def test_cost_warns_at_three_times_and_pauses_at_five_times_the_average() -> None:
    gov = _gov(prices={"claude-sonnet": Price(input=3.0, output=15.0)})
    gov.baseline = CostBaseline(average_usd=2.0, tasks=6, basis="all kinds")
    kinds: list[str] = []
    for _ in range(12):  # $1 each: 1M input tokens at $3/M would be $3; use USD directly
        outcome = governors.apply_report(gov, Report(cost_usd=1.0), "t1", NOW)
        kinds += [d.kind for d in outcome.directives]
    assert kinds == ["cost_warning", "cost_pause"]
    assert gov.hold is not None and gov.hold.kind == "cost"
    assert "task t1 has cost $11.00, above $10.00" in gov.hold.reason
    governors.release(gov, "t1")
    assert gov.hold is None and gov.pause_at_usd == 24.0  # twice the cost at the resume
    outcome = governors.apply_report(gov, Report(cost_usd=5.0), "t1", NOW)
    assert outcome.directives == []

    # Tokens are priced per model (longest prefix), and summed per task.
    priced = _gov(
        prices={"claude": Price(input=1, output=1), "claude-sonnet": Price(input=3.0, output=15.0)}
    )
    usage = {"claude-sonnet-4-5-20250929": TokenUsage(input=1_000_000, output=100_000)}
    governors.apply_report(priced, Report(usage=usage), "t2", NOW)
    assert priced.task_costs == {"t2": 4.5} and priced.tokens.input == 1_000_000


def test_with_too_little_history_the_ceiling_applies() -> None:
    gov = _gov(cost_ceiling_usd=10.0)
    gov.baseline = CostBaseline(task_before_usd=4.0, basis="ceiling")
    outcome = governors.apply_report(gov, Report(cost_usd=2.5), "t1", NOW)
    assert [d.kind for d in outcome.directives] == ["cost_warning"]  # $6.50 > 3/5 of $10
    # The agent reads where warning and pause fall, and on what: the numbers the inbox shows.
    assert outcome.directives[0].text == (
        "Tether: task t1 has cost $6.50: warned above $6.00 and paused above $10.00, the "
        "ceiling, as too few tasks have completed for an average. The founder has been told. "
        "Finish the smallest useful step."
    )
    outcome = governors.apply_report(gov, Report(cost_usd=4.0), "t1", NOW)
    assert [d.kind for d in outcome.directives] == ["cost_pause"]
    assert "the ceiling of $10.00" in gov.hold.reason if gov.hold else False


def test_transcript_usage_is_read_incrementally_once_per_message(tmp_path: Path) -> None:
    transcript = tmp_path / "session.jsonl"
    transcript.write_text(
        line({"type": "user", "message": {"role": "user", "content": "hi"}})
        + assistant("m1", 100, 1000, 50)
        + assistant("m1", 100, 1000, 50)  # the same message written twice (parallel tools)
        + assistant("s1", 9000, 0, 0, side=True)  # a subagent: not the main context
    )
    state = tmp_path / "cursors"
    with Cursor(state, "cc-1") as cursor:
        first = cursor.read(transcript)
        cursor.commit()
    assert first.context_tokens == 1150
    assert first.usage["claude-sonnet-4-5"] == {
        "input": 9100,
        "output": 20,
        "cache_read": 1000,
        "cache_write": 50,
    }
    # Not committed: the same spend is read again (the report did not get through).
    with transcript.open("a") as f:
        f.write(assistant("m2", 10, 3000, 0) + '{"type": "assistant", "mess')
    with Cursor(state, "cc-1") as cursor:
        cursor.read(transcript)
    with Cursor(state, "cc-1") as cursor:
        second = cursor.read(transcript)
        cursor.commit()
    assert second.context_tokens == 3010 and second.usage["claude-sonnet-4-5"]["input"] == 10
    with transcript.open("a") as f:
        f.write('age": {}}\n' + line({"type": "system", "subtype": "compact_boundary"}))
    with Cursor(state, "cc-1") as cursor:
        third = cursor.read(transcript)
    assert third.compacted and third.context_tokens is None and third.usage == {}


def test_handoff_brief_carries_decisions_files_tests_and_task() -> None:
    gov = _gov()
    gov.notes = ["decision: keep the v1 API", "question: who owns the DNS?"]
    governors.apply_report(
        gov,
        Report(
            tool_call=call(
                "PostToolUse",
                {"tool_name": "Write", "tool_input": {"file_path": "/r/api.py"}},
            ),
            context_tokens=190_000,
        ),
        "t9",
        NOW - timedelta(hours=1),
    )
    text, state = governors.handoff_brief("coder", NOW, "t9", gov)
    assert text.startswith("coder's session started 2026-11-26 12:00 UTC handed off with its ")
    for part in ("Task you hold: t9", "keep the v1 API", "who owns the DNS?", "/r/api.py"):
        assert part in text
    assert state["task_id"] == "t9" and state["files"] == ["/r/api.py"]


def test_a_reported_cost_can_raise_the_priced_spend_but_never_lower_it() -> None:
    from tether.config import DEFAULT_PRICES
    from tether.contracts import GovernorLimits, TokenUsage

    gov = Governor(limits=GovernorLimits(prices=DEFAULT_PRICES))
    usage = {"claude-sonnet-4-5": TokenUsage(input=1_000_000, output=100_000)}
    priced = DEFAULT_PRICES["claude-sonnet"].cost(usage["claude-sonnet-4-5"])  # $4.50
    governors.apply_report(gov, Report(usage=usage, cost_usd=0.0), "t1", NOW)
    assert gov.cost_usd == pytest.approx(priced)
    governors.apply_report(gov, Report(usage=usage, cost_usd=10.0), "t1", NOW)
    assert gov.cost_usd == pytest.approx(priced + 10.0)
    assert gov.task_costs["t1"] == pytest.approx(priced + 10.0)


def test_a_hard_budget_holds_on_the_agents_day_and_the_teams_month_across_sessions() -> None:
    from tether.contracts import BudgetStatus

    gov = Governor()
    gov.budget = BudgetStatus(
        day="2026-11-26",
        month="2026-11",
        agent_daily_usd=10.0,
        team_monthly_usd=100.0,
        others_today_usd=6.0,
        others_month_usd=50.0,
    )
    # Other sessions spent $6 today: this one's $3 keeps the agent inside its $10.
    assert governors.apply_report(gov, Report(cost_usd=3.0), "t1", NOW).new_hold is None
    outcome = governors.apply_report(gov, Report(cost_usd=1.5), "t1", NOW)
    held = outcome.new_hold
    assert held is not None and held.kind == "budget" and held.task_id is None
    assert held.reason == "it has spent $10.50 today (UTC), above its daily budget of $10.00"
    assert held.evidence["scope"] == "agent" and held.evidence["spent_usd"] == 10.5
    assert [d.kind for d in outcome.directives] == ["budget_stop"]
    answer = outcome.answer(gov)
    assert answer.deny is not None and answer.deny.startswith("stopped by Tether: it has spent")
    # Released without a raise, the next report holds again.
    governors.release(gov, "t1")
    assert governors.apply_report(gov, Report(cost_usd=0.01), "t1", NOW).new_hold is not None

    # The next UTC day: yesterday's spend, the session's own included, no longer counts
    # against the day (until the budget is read again, the others count as nothing) ...
    gov.hold = None
    tomorrow = NOW + timedelta(days=1)
    assert governors.apply_report(gov, Report(cost_usd=2.0), "t1", tomorrow).new_hold is None
    # ... but the month does: 50 from the others (read for November) and 6.51 of its own.
    assert governors.budget_spend(gov, tomorrow) == pytest.approx((2.0, 56.51))
    assert governors.budget_spend(gov, NOW) == pytest.approx((10.51, 56.51))
    gov.budget.others_month_usd = 95.0
    outcome = governors.apply_report(gov, Report(cost_usd=0.1), "t1", NOW)
    assert outcome.new_hold is not None
    assert outcome.new_hold.reason.startswith("it has spent $10.61 today")
    gov.hold, gov.budget.agent_daily_usd = None, None
    outcome = governors.apply_report(gov, Report(cost_usd=0.1), "t1", NOW)
    assert outcome.new_hold is not None and outcome.new_hold.evidence["scope"] == "team"
    assert outcome.new_hold.reason == (
        "the team has spent $101.71 this month (UTC), above its monthly budget of $100.00"
    )
    # A cost pause's release rule (the next pause at twice the cost) is not a budget's.
    gov.hold = None
    assert gov.pause_at_usd is None


def test_a_budget_raise_counts_only_when_the_founders_key_signed_it_for_that_period(
    tmp_path: Path,
) -> None:
    from datetime import date

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tether import budgets
    from tether.config import TetherConfig
    from tether.trust.signing import generate, load_private, order

    key_path, public = generate(tmp_path)
    config = TetherConfig.model_validate(
        {
            "agents": [{"name": "coder"}, {"name": "ops"}],
            "founder": {"public_key": public},
            "budget": {"agent_daily_usd": 10.0, "team_monthly_usd": 100, "agents": {"ops": 3}},
        }
    )
    day = date(2026, 11, 26)

    def row(scope: str, usd: float, key: Any = None, subject: str | None = None) -> dict[str, Any]:
        signed = order(
            "budget",
            subject or budgets.subject(scope, usd),
            "founder",
            "launch",
            key or load_private(key_path),
        )
        return {"scope": scope, "limit_usd": usd, "order_json": signed.model_dump(mode="json")}

    assert budgets.limits(config, "ops", day, []) == (3.0, 100.0, [])
    raised = [row(budgets.agent_scope("coder", day), 25), row(budgets.team_scope(day), 250)]
    assert budgets.limits(config, "coder", day, raised) == (
        25.0,
        250.0,
        ["coder daily $25.00 by founder (launch)", "team monthly $250.00 by founder (launch)"],
    )
    # Another agent's raise, another key, a row whose limit is not the one signed, an order
    # for another action: none of them counts.
    forged = [
        row(budgets.agent_scope("coder", day), 99),
        row(budgets.agent_scope("ops", day), 500, key=Ed25519PrivateKey.generate()),
        {**row(budgets.agent_scope("ops", day), 5), "limit_usd": 500.0},
        row(budgets.agent_scope("ops", day), 7, subject="ops"),
    ]
    assert budgets.limits(config, "ops", day, forged) == (3.0, 100.0, [])
    with pytest.raises(ValueError, match=r"budget\.agents names ghost"):
        TetherConfig.model_validate({"agents": [{"name": "a"}], "budget": {"agents": {"ghost": 1}}})


def test_the_runtimes_own_figures_and_the_hooks_count_once_per_process() -> None:
    """The runner reads the runtime's own usage (cumulative per process) beside the hooks'
    reports: the larger counts, once, whichever arrives first; a late figure of an earlier
    process counts for nothing."""
    from tether.config import DEFAULT_PRICES
    from tether.contracts import GovernorLimits, RuntimeUsage

    gov = Governor(limits=GovernorLimits(prices=DEFAULT_PRICES))
    model = "claude-sonnet-4-5"
    turn = TokenUsage(input=20_000, output=40)  # $0.0606
    one = DEFAULT_PRICES["claude-sonnet"].cost(turn)
    governors.begin_process(gov, "rs:1")

    def runtime(turns: int, cost: float | None = None, process: str = "rs:1") -> RuntimeUsage:
        usage = TokenUsage(input=turn.input * turns, output=turn.output * turns)
        return RuntimeUsage(
            runtime_session="rs", process=process, usage={model: usage}, cost_usd=cost
        )

    # The stream shows the first message before the hook reports its tool call ...
    governors.apply_runtime(gov, runtime(1), "t1", NOW)
    governors.apply_report(gov, Report(usage={model: turn}), "t1", NOW)
    assert gov.cost_usd == pytest.approx(one) and gov.tokens == turn
    # ... the hook reports the second turn first, then the stream catches up.
    governors.apply_report(gov, Report(usage={model: turn}), "t1", NOW)
    governors.apply_runtime(gov, runtime(2), "t1", NOW)
    assert gov.cost_usd == pytest.approx(2 * one)
    # A final turn no hook reported (the answer after the last tool call), priced by the
    # runtime itself a little above Tether's list: the runtime's figure counts.
    governors.apply_runtime(gov, runtime(3, cost=3 * one + 0.01), "t1", NOW)
    assert gov.cost_usd == pytest.approx(3 * one + 0.01)
    assert gov.task_costs["t1"] == pytest.approx(3 * one + 0.01)
    assert gov.tokens.input == 60_000 and gov.day_costs["2026-11-26"] == pytest.approx(gov.cost_usd)
    # A late figure of this process once the next one started: nothing of it counts.
    governors.begin_process(gov, "rs:2")
    governors.apply_runtime(gov, runtime(9), "t1", NOW)
    assert gov.cost_usd == pytest.approx(3 * one + 0.01)
    # Without hooks (a command runtime), the context comes from the runtime: 70% compacts.
    gov.limits.context_window = 100_000
    late = RuntimeUsage(runtime_session="rs", process="rs:2", context_tokens=71_000)
    assert [d.kind for d in governors.apply_runtime(gov, late, "t1", NOW).directives] == ["compact"]
