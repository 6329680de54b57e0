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
