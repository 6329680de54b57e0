"""Property-based fuzzing (Hypothesis) of what anyone can hand Tether: task files, hook input and
transcripts, message payloads. Each property says what must hold for every input: a clear
refusal or a result, never another exception. Bounded so `./run test` stays quick;
scripts/fuzz.py runs the same generators much longer, against real processes and servers."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio import workflow

from tether.cli.taskfile import load_task_file
from tether.contracts import Report, TaskSpec
from tether.errors import TetherError
from tether.hook.claude_code import BadInput, read_payload
from tether.hook.fingerprint import claude_code_tool_call, error_signature
from tether.hook.transcript import Cursor
from workflows.guard import _misfit
from workflows.registry import WORKFLOWS

# scripts/fuzz.py sets TETHER_FUZZ_EXAMPLES to run the same properties much longer.
EXAMPLES = int(os.environ.get("TETHER_FUZZ_EXAMPLES") or 150)
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
# The keys the code reads, with values of any JSON type, plus noise.
hook_keys = st.sampled_from(
    [
        "session_id",
        "hook_event_name",
        "source",
        "transcript_path",
        "tool_name",
        "tool_input",
        "tool_response",
        "error",
        "is_interrupt",
        "compact_summary",
        "stop_hook_active",
        "reason",
    ]
)
hook_payloads = st.dictionaries(hook_keys | st.text(max_size=10), json_values, max_size=8)

# TOML made of the task file's own words, so the generator reaches validation, not only parsing.
toml_keys = st.sampled_from(["id", "title", "kind", "checks", "command", "url", "timeout_seconds"])
toml_values = (
    st.text(max_size=20).map(json.dumps)
    | st.integers(-5, 10**6).map(str)
    | st.sampled_from(['"shell"', '"http"', '"pytest"', '"git"', "[]", "[{}]", "{}", "true"])
)
toml_lines = st.lists(
    st.tuples(toml_keys, toml_values).map(lambda kv: f"{kv[0]} = {kv[1]}")
    | st.sampled_from(["[[checks]]", 'kind = "shell"', 'command = "true"', "[artifact]"]),
    max_size=10,
).map("\n".join)


@FAST
@given(st.binary(max_size=400) | toml_lines.map(str.encode))
def test_a_task_file_is_a_task_or_one_clear_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "task.toml"
        path.write_bytes(content)
        try:
            spec = load_task_file(path)
        except TetherError as exc:
            assert str(exc) and "Traceback" not in str(exc)
        else:
            assert isinstance(spec, TaskSpec)


@FAST
@given(hook_payloads)
def test_hook_input_is_read_or_refused_with_a_reason(payload: dict[str, Any]) -> None:
    raw = json.dumps(payload, allow_nan=True).encode()
    try:
        read = read_payload(io.BytesIO(raw))
    except BadInput as exc:
        assert str(exc)
        return
    assert isinstance(read, dict)
    for event in ("PostToolUse", "PostToolUseFailure"):
        call = claude_code_tool_call(event, read)
        if call is not None:
            # Whatever came in, what goes to the governor is a valid report.
            Report.model_validate({"tool_call": call})


@FAST
@given(st.binary(max_size=300))
def test_hook_stdin_bytes_are_read_or_refused(raw: bytes) -> None:
    try:
        read_payload(io.BytesIO(raw))
    except BadInput as exc:
        assert str(exc)


@FAST
@given(st.text(max_size=2000))
def test_an_error_signature_is_stable_and_bounded(error: str) -> None:
    first = error_signature(error)
    assert first == error_signature(error) and len(first) < 400


@FAST
@given(st.lists(json_values | st.text(max_size=200), max_size=12))
def test_a_transcript_of_any_lines_reads_without_error(lines: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        transcript = Path(folder) / "t.jsonl"
        transcript.write_text(
            "".join(
                (line if isinstance(line, str) else json.dumps(line)).replace("\n", " ") + "\n"
                for line in lines
            )
        )
        with Cursor(Path(folder) / "cursors", "s") as cursor:
            reading = cursor.read(transcript)
            cursor.commit()
        for counts in reading.usage.values():
            assert all(isinstance(v, int) and v >= 0 for v in counts.values())
        # The usage is what a report may carry.
        Report.model_validate({"usage": reading.usage, "context_tokens": reading.context_tokens})


HANDLERS = [
    (cls.__name__, kind, name, table[name].fn)
    for cls in WORKFLOWS
    for kind, table in (
        ("signal", workflow._Definition.must_from_class(cls).signals),
        ("update", workflow._Definition.must_from_class(cls).updates),
    )
    for name in sorted(n for n in table if n)
]


@pytest.mark.parametrize(("fn"), [h[3] for h in HANDLERS], ids=[f"{h[0]}.{h[2]}" for h in HANDLERS])
@settings(max_examples=max(EXAMPLES // 4, 10), deadline=None)
@given(args=st.lists(json_values, max_size=3))
def test_the_guard_judges_any_arguments_without_error(fn: Any, args: list[Any]) -> None:
    """Whatever arrives (decoded as plain values when the count is off), the guard answers
    with a reason or lets a well-formed call through; it never raises."""
    problem = _misfit(fn, args)
    assert problem is None or isinstance(problem, str)


@FAST
@given(json_values)
def test_contracts_take_any_json_as_a_model_or_a_validation_error(value: Any) -> None:
    for model in (TaskSpec, Report):
        with contextlib.suppress(ValidationError):
            model.model_validate(value)
