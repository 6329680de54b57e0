"""The Claude Code hook adapter: `tether hook claude-code EVENT --agent NAME`.

Claude Code posts each hook's input to the gateway (`type: "http"` hooks), or runs this module
as a command with the input on stdin, which forwards it to the gateway with the agent's token
(TETHER_AGENT_TOKEN) and prints the answer (https://code.claude.com/docs/en/hooks). Either way
the decisions below are made in the gateway, which alone holds a key Tether's workflows accept.
The command sits on the agent's hot path, so it uses only the standard library.

Events:
- SessionStart: start or attach to the agent's session workflow (the `attach` update, the same
  protocol as the Python client: the workflow decides to resume or supersede); answer with the
  startup brief as additionalContext, or with the reason the session is blocked.
- PreToolUse: deny every tool call while the session is blocked (or not open), held by a
  governor (a loop, a cost pause) or ending after a handoff, with the reason.
- PostToolUse / PostToolUseFailure: report the call (its fingerprint: tool, action, normalised
  error signature — never the raw output) with the context usage and spend read from the
  transcript; the governors' directives come back as additionalContext.
- PostCompact: report the compaction (it re-arms the memory governor) and its summary.
- Stop: block stopping once, with the reason, while the session has no deliverable yet
  (respects stop_hook_active).
- SessionEnd: end the session; the artifact test runs in the workflow, not here.

If Tether cannot be reached, tool calls are denied when the hook runs with --fail-closed (a
`type: "http"` hook cannot do that: Claude Code lets the call through when the gateway does not
answer), and the hook always says why in one line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether.errors import SESSION_ENDED, SESSION_SUPERSEDED
from tether.hook import runtimes
from tether.hook.wire import (
    NOT_RUNNING,
    Refused,
    Unreachable,
    http_request,
    request_id,
)
from tether.names import (
    DEFAULT_GATEWAY_URL,
    NAME_PATTERN,
    SESSION_ATTACH,
    SESSION_CHECK_DELIVERABLE,
    SESSION_END,
    SESSION_GATE,
    SESSION_REPORT,
    session_workflow_id,
)

# Claude Code's SessionStart and Stop hooks get 60 s (set by `tether hooks install`).
STARTUP_TIMEOUT = 55.0


# SessionEnd gets the 5 s `tether hooks install` gives it: the last spend, then the end.
END_REPORT_TIMEOUT = 2.0
END_TIMEOUT = 1.5


# How long a report waits for its answer; one that gets none is sent again, with the same
# update id, by the next hook (TETHER_HOOK_REPORT_TIMEOUT overrides, in seconds).
def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        return default
    return value if 0 < value < 3600 else default


REPORT_TIMEOUT = _seconds("TETHER_HOOK_REPORT_TIMEOUT", 10.0)

# How long a report waits for the tool call's line to reach the transcript (an HTTP hook is
# posted as the tool returns; a command hook's process start used to hide the gap).
TRANSCRIPT_WAIT = 0.5

# A transcript cursor is kept this long after its session was last reported (`--resume`).
CURSOR_DAYS = 30


EVENTS = (
    "SessionStart",
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PostCompact",
    "Stop",
    "SessionEnd",
)


# What Claude Code keeps of a context window for itself (measured with 2.1.332 against a scripted
# Messages API, see tests/test_claude_code.py): with auto-compact off it refuses the next request
# ("Prompt is too long") once the last response used window - 23,000 tokens (its 20,000 output
# reserve and a 3,000 buffer); with auto-compact on it compacts 13,000 earlier.
RESERVE_AUTO_COMPACT_OFF = 23_000
RESERVE_AUTO_COMPACT_ON = 33_000


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def claude_code_window(env: dict[str, str]) -> tuple[int | None, int]:
    """(the window when the environment sets it, the tokens Claude Code keeps of it), from the
    environment Claude Code gives its hooks: DISABLE_AUTO_COMPACT / DISABLE_COMPACT,
    CLAUDE_CODE_MAX_CONTEXT_TOKENS, CLAUDE_CODE_AUTO_COMPACT_WINDOW and
    CLAUDE_AUTOCOMPACT_PCT_OVERRIDE (https://code.claude.com/docs/en/env-vars)."""

    def number(name: str) -> int | None:
        raw = (env.get(name) or "").strip()
        return int(raw) if raw.isdigit() and int(raw) > 0 else None

    window = number("CLAUDE_CODE_MAX_CONTEXT_TOKENS")
    if _truthy(env.get("DISABLE_AUTO_COMPACT")) or _truthy(env.get("DISABLE_COMPACT")):
        return window, RESERVE_AUTO_COMPACT_OFF
    compact_window = number("CLAUDE_CODE_AUTO_COMPACT_WINDOW")
    if compact_window is not None:
        window = min(window or compact_window, compact_window)
    reserve = RESERVE_AUTO_COMPACT_ON
    pct = number("CLAUDE_AUTOCOMPACT_PCT_OVERRIDE")
    if window is not None and pct is not None and pct < 100:
        # It compacts at pct% of the auto-compact window, and never later than by default.
        reserve = max(reserve, window - window * pct // 100)
    return window, reserve


def _stack(home: Path) -> dict[str, Any]:
    try:
        data = json.loads((home / "stack.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _home() -> Path:
    return Path(os.environ.get("TETHER_HOME") or Path.home() / ".tether").expanduser()


def locate_gateway(flag: str | None) -> str:
    """The gateway's URL: the flag, then TETHER_GATEWAY_URL, then the stack.json of a running
    `tether up`, then the default."""
    url = flag or os.environ.get("TETHER_GATEWAY_URL") or _stack(_home()).get("gateway_url")
    return str(url or DEFAULT_GATEWAY_URL).rstrip("/")


# The runtime's environment the decisions read (claude_code_window), sent along as headers: the
# gateway does not share the agent's environment. A `type: "http"` hook interpolates them.
ENV_FORWARDED = (
    "CLAUDE_CODE_MAX_CONTEXT_TOKENS",
    "DISABLE_AUTO_COMPACT",
    "DISABLE_COMPACT",
    "CLAUDE_CODE_AUTO_COMPACT_WINDOW",
    "CLAUDE_AUTOCOMPACT_PCT_OVERRIDE",
)
ENV_HEADER_PREFIX = "X-Tether-Env-"
TOKEN_ENV = "TETHER_AGENT_TOKEN"


def forwarded_env(headers: Any) -> dict[str, str]:
    """The runtime's environment from a request's headers (unset ones arrive empty, or as the
    uninterpolated `$NAME`)."""
    env = {}
    for name in ENV_FORWARDED:
        value = str(headers.get(ENV_HEADER_PREFIX + name) or "").strip()
        if value and not value.startswith("$"):
            env[name] = value
    return env


REPORT_TIMEOUT_HEADER = "X-Tether-Report-Timeout"
TROUBLE_HEADER = "X-Tether-Trouble"


def report_timeout(headers: Any) -> float:
    """The report timeout a request asks for (the hook's TETHER_HOOK_REPORT_TIMEOUT), bounded."""
    try:
        value = float(headers.get(REPORT_TIMEOUT_HEADER) or REPORT_TIMEOUT)
    except ValueError:
        return REPORT_TIMEOUT
    return min(max(value, 0.5), 60.0)


def event_timeout(event: str) -> float:
    """How long the gateway may take on an event (within what `tether hooks install` gives
    Claude Code to wait for the hook)."""
    if event in ("SessionStart", "Stop"):
        return STARTUP_TIMEOUT
    if event == "SessionEnd":
        return END_REPORT_TIMEOUT + END_TIMEOUT + 0.5
    return REPORT_TIMEOUT + 2


def _context(event: str, text: str, user_message: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "hookSpecificOutput": {"hookEventName": event, "additionalContext": text[:9900]}
    }
    if user_message:
        answer["systemMessage"] = user_message
    return answer


def _deny(reason: str) -> dict[str, Any]:
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    }


class Hook:
    """The adapter's decisions for one agent; `temporal` is the gateway's sealed client (see
    tether/gateway/transport.py), `env` the runtime's environment as the hook sees it, `home`
    where transcript cursors are kept."""

    def __init__(
        self,
        agent: str,
        temporal: Any,
        task_queue: str,
        fail_closed: bool,
        env: dict[str, str] | None = None,
        home: Path | None = None,
        report_timeout: float = REPORT_TIMEOUT,
        runtime: str = "claude-code",
    ):
        self.agent = agent
        self.runtime = runtime
        self.temporal = temporal
        self.task_queue = task_queue
        self.fail_closed = fail_closed
        self.env = dict(os.environ) if env is None else env
        self.report_timeout = report_timeout
        self.cursors = (home or _home()) / "hooks" / agent
        self.workflow_id = session_workflow_id(agent)

    def gate(self) -> dict[str, Any] | None:
        gate = self.temporal.query(self.workflow_id, SESSION_GATE)
        return gate if isinstance(gate, dict) else None

    def report(
        self,
        event: str,
        payload: dict[str, Any],
        timeout: float | None = None,
        always: bool = False,
    ) -> dict[str, Any] | None:
        """Send what happened (tool call, context, spend) to the governors; their answer.
        Nothing is sent when nothing happened, unless `always`."""
        timeout = self.report_timeout if timeout is None else timeout
        # Imported here: PreToolUse, the most frequent hook, needs neither.
        from tether.hook.fingerprint import bounded, claude_code_tool_call, redact
        from tether.hook.transcript import Cursor

        report: dict[str, Any] = {}
        session_id = str(payload.get("session_id") or "")
        call = claude_code_tool_call(event, payload)
        if call is not None:
            report["tool_call"] = call
        if event == "PostCompact":
            report["compacted"] = True
            if payload.get("compact_summary"):
                summary = str(payload["compact_summary"])[:8000]
                report["compact_summary"] = redact(bounded(summary))
        transcript = payload.get("transcript_path")
        if not transcript or not session_id:
            return self._send(report, session_id, timeout) if report or always else None
        with Cursor(self.cursors, session_id) as cursor:
            staged = cursor.pending()
            if staged is not None:
                # A report that got no answer: the same update id again (counted once).
                if self._send(staged["report"], None, timeout, staged["id"]) is None:
                    cursor.unstage()
                else:
                    cursor.settle()
            path = Path(str(transcript)).expanduser()
            tool_use = payload.get("tool_use_id")
            if isinstance(tool_use, str) and tool_use and event != "PostCompact":
                cursor.wait_for(path, tool_use, TRANSCRIPT_WAIT)
            reading = cursor.read(path)
            if reading.context_tokens is not None:
                report["context_tokens"] = reading.context_tokens
                window, reserve = claude_code_window(self.env)
                report["context_reserve"] = reserve
                if window is not None:
                    report["context_window"] = window
            # A compact_boundary in the transcript is not reported: PostCompact reports each
            # compaction once (Claude Code 2.1.76 and later).
            if reading.usage:
                report["usage"] = reading.usage
            if not report and not always:
                return None
            if session_id:
                report["external_id"] = session_id
            update_id = request_id()
            cursor.stage(update_id, report)
            answer = self._send(report, session_id, timeout, update_id)
            if answer is None:
                cursor.unstage()
            else:
                cursor.settle()
            return answer

    def _send(
        self,
        report: dict[str, Any],
        session_id: str | None,
        timeout: float = REPORT_TIMEOUT,
        update_id: str | None = None,
    ) -> dict[str, Any] | None:
        if session_id:
            report["external_id"] = session_id
        try:
            answer = self.temporal.update(
                self.workflow_id, SESSION_REPORT, [report], timeout, update_id=update_id
            )
        except Refused:
            return None  # the session has ended: PreToolUse says so on the next call
        return answer if isinstance(answer, dict) else None

    def start_or_resume(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Start-or-attach, as the Python client's update-with-start does: start with the id
        conflict policy USE_EXISTING, then the `attach` update, where the workflow decides to
        resume or supersede. An ended (or just superseded) session is waited for until its
        workflow has closed, then the next one starts."""
        session_id = payload.get("session_id") or None
        source = str(payload.get("source") or "startup")
        arg = {
            "agent": self.agent,
            "external_id": session_id,
            "runtime": self.runtime,
            "source": source,
        }
        attach = {"external_id": session_id, "runtime": self.runtime, "source": source}
        summary = f"Session of {self.agent} ({self.runtime})"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for _ in range(3):
            run_id = self.temporal.start(self.workflow_id, self.task_queue, arg, summary)
            left = deadline - time.monotonic()
            try:
                return dict(self.temporal.update(self.workflow_id, SESSION_ATTACH, [attach], left))
            except Refused as exc:
                # Closed between the start and the update: start again.
                if exc.kind not in (SESSION_ENDED, SESSION_SUPERSEDED, NOT_RUNNING):
                    raise
            self.temporal.wait_closed(self.workflow_id, run_id, deadline - time.monotonic())
        raise Unreachable(f"the session of {self.agent} kept changing while starting; try again")

    def handle(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if event == "SessionStart":
            # SessionStart(compact) reattaches only: PostCompact reports the compaction.
            from tether.hook.transcript import Cursor

            Cursor.prune(self.cursors, CURSOR_DAYS * 86400)
            started = self.start_or_resume(payload)
            if started.get("state") == "blocked":
                notice = str(started.get("notice") or "blocked")
                return _context(event, notice, user_message=f"Tether: {notice}")
            brief = started.get("brief") or {}
            return _context(event, str(brief.get("text") or "Tether: no brief was produced."))

        if event == "PreToolUse":
            gate = self.gate()
            if (
                gate is not None
                and gate.get("state") == "ended"
                and gate.get("deny")
                and gate.get("external_id") in (None, payload.get("session_id"))
            ):
                # This runtime session's own Tether session ended (a handoff, the founder):
                # Tether's decision, denied with its reason even when failing open.
                return _deny(str(gate["deny"]))
            problem = self._not_governed(gate, payload)
            if problem:
                return _deny(problem) if self.fail_closed else {"systemMessage": problem}
            assert gate is not None
            if gate.get("deny"):
                # Blocked, still starting, held by a governor, or ending after a handoff.
                return _deny(str(gate["deny"]))
            return None

        if event in ("PostToolUse", "PostToolUseFailure", "PostCompact"):
            # One round trip on every tool call: the update itself refuses a session that is
            # not open or belongs to another runtime session.
            answer = self.report(event, payload)
            if not answer or event == "PostCompact":
                return None
            texts = [str(d.get("text")) for d in answer.get("directives") or []]
            if not texts:
                return None
            # Context only: a `decision: "block"` here stops nothing (the tool already ran) and
            # makes Claude Code show the model the text twice, once as a "hook blocking error"
            # naming the hook's command line. The next PreToolUse denies, with the reason.
            return _context(event, "\n".join(texts))

        if event == "Stop":
            if payload.get("stop_hook_active"):
                return None  # stop was already blocked once; let it stop
            # The turn's spend, if any, is reported, and its answer says whether this runtime
            # session's Tether session is open and active; with nothing to report, the gate (a
            # query, cheaper than an update) says it. Only then is the deliverable checked.
            answer = self.report(event, payload)
            if answer is None:
                gate = self.gate()
                mine = gate is not None and gate.get("external_id") in (
                    None,
                    payload.get("session_id"),
                )
                answer = gate if mine else None
            if answer is None or answer.get("state") != "active":
                return None
            try:
                result = self.temporal.update(
                    self.workflow_id, SESSION_CHECK_DELIVERABLE, [], STARTUP_TIMEOUT
                )
            except Refused:
                return None
            if isinstance(result, dict) and not result.get("passed"):
                return {
                    "decision": "block",
                    "reason": (
                        f"No deliverable yet: {result.get('summary')}. Commit the work on your "
                        "branch before stopping, or say plainly what blocks you."
                    ),
                }
            return None

        if event == "SessionEnd":
            # What the run spent since the last report (its last turn, a compaction: Claude
            # Code's cost-state line is written by now), before the session ends.
            with contextlib.suppress(Refused, Unreachable):
                self.report(event, payload, END_REPORT_TIMEOUT)
            reason = f"{self.runtime} SessionEnd ({payload.get('reason') or 'other'})"
            try:
                self.temporal.update(
                    self.workflow_id,
                    SESSION_END,
                    [
                        {
                            "reason": reason,
                            "by": self.runtime,
                            "external_id": payload.get("session_id"),
                        }
                    ],
                    END_TIMEOUT,
                    wait_completed=False,
                )
            except Refused as exc:
                # Already ended (a handoff, the founder, a deadline): nothing left to end.
                if exc.kind not in (SESSION_ENDED, NOT_RUNNING):
                    print(f"tether: session not ended: {exc}", file=sys.stderr)
            return None
        return None

    def _not_governed(self, view: dict[str, Any] | None, payload: dict[str, Any]) -> str | None:
        if view is None or view.get("state") == "ended":
            return (
                f"Tether: no open session for agent {self.agent}; start a new Claude Code "
                "session so Tether can brief you and check your credentials"
            )
        current, mine = view.get("external_id"), payload.get("session_id")
        if current and mine and current != mine:
            return (
                f"Tether: agent {self.agent} already has an open session ({current}); one "
                "session per agent — end it before working in this one"
            )
        return None


# Claude Code's hook input is a JSON object a few KB long; a tool's output inside it can be
# large, but not this large.
MAX_INPUT_BYTES = 16 * 1024 * 1024
_STRINGS = ("session_id", "hook_event_name", "source", "transcript_path", "tool_name", "reason")


class BadInput(Exception):
    """The hook input is not what Claude Code sends."""


def read_payload(stream: Any, check_tool_input: bool = True) -> dict[str, Any]:
    """The hook input: a JSON object of bounded size whose identifying fields are strings;
    BadInput says what is wrong with anything else. `check_tool_input`: the input is Claude
    Code's (another runtime's is checked once translated: Cursor sends a JSON string)."""
    raw = stream.read(MAX_INPUT_BYTES + 1)
    if len(raw) > MAX_INPUT_BYTES:
        raise BadInput(f"more than {MAX_INPUT_BYTES // (1024 * 1024)} MB on stdin")
    if not raw.strip():
        return {}
    try:
        payload = json.loads(raw)
    except RecursionError as exc:
        # The C parser stops deep nesting with RecursionError, not ValueError.
        raise BadInput("JSON nested too deeply") from exc
    except ValueError as exc:
        raise BadInput(f"not valid JSON ({str(exc)[:120]})") from exc
    if not isinstance(payload, dict):
        raise BadInput(f"not a JSON object but {type(payload).__name__}")
    for key in _STRINGS:
        value = payload.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 4096):
            raise BadInput(f"{key} must be a string of at most 4096 characters")
    if check_tool_input:
        check_translated(payload)
    return payload


def check_translated(payload: dict[str, Any]) -> None:
    """What the decisions need of a Claude Code shaped input."""
    for key in ("tool_input",):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            raise BadInput(f"{key} must be a JSON object")


def _stderr(line: str) -> None:
    print(f"tether: {line}", file=sys.stderr)


def _trouble_answer(
    event: str,
    line: str,
    fail_closed: bool,
    outage: bool = True,
    say: Callable[[str], None] = _stderr,
) -> dict[str, Any] | None:
    """The answer when Tether could not decide: one line saying why, and deny or let through.
    `outage`: Tether could not be asked (it may come back), rather than refused the input."""
    if event == "PreToolUse":
        if fail_closed:
            tail = " Tool calls are denied until it is back; tell the founder." if outage else ""
            return _deny(f"{line}.{tail}")
        return {"systemMessage": f"{line}; tool calls are not governed."}
    if event == "SessionStart":
        tail = " Tool calls will be denied until it is back." if fail_closed and outage else ""
        return _context(event, f"{line}. No startup brief.{tail}", user_message=line)
    say(line)
    return None


def answer(
    hook: Hook, event: str, payload: dict[str, Any], say: Callable[[str], None] = _stderr
) -> dict[str, Any] | None:
    """The hook's answer to one event, whatever happens: a failure is answered as the agent's
    mode says (deny or let through), in one line saying why (to `say` when the event has no
    answer to carry it)."""
    closed = hook.fail_closed
    try:
        return hook.handle(event, payload)
    except Unreachable as exc:
        return _trouble_answer(event, f"Tether is unreachable: {exc}", closed, say=say)
    except Refused as exc:
        return _trouble_answer(event, f"Tether refused: {exc}", closed, say=say)
    except Exception as exc:  # whatever went wrong, the hook's mode decides the answer
        line = f"Tether's hook failed ({type(exc).__name__}: {str(exc)[:200]})"
        return _trouble_answer(event, line, closed, say=say)


def _forward(
    event: str,
    agent: str,
    raw: bytes,
    gateway: str,
    fail_closed: bool,
    runtime: str = "claude-code",
    runtime_event: str | None = None,
) -> tuple[dict[str, Any] | None, bool]:
    """Post the hook input to the gateway with the agent's token: (its answer, in the
    runtime's form, True), or (the trouble, in Claude Code's form, False)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        line = (
            f"Tether refused: {TOKEN_ENV} is not set in the agent's environment; the founder "
            f"mints one with `tether agent token {agent}`"
        )
        return _trouble_answer(event, line, fail_closed, outage=False), False
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for name in ENV_FORWARDED:
        value = os.environ.get(name)
        if value:
            headers[ENV_HEADER_PREFIX + name] = value
    if os.environ.get("TETHER_HOOK_REPORT_TIMEOUT"):
        headers[REPORT_TIMEOUT_HEADER] = str(REPORT_TIMEOUT)
    url = f"{gateway}/hooks/{runtime}/{runtime_event or event}?agent={agent}"
    try:
        status, body, trouble = http_request(
            "POST", url, raw, event_timeout(event) + 1, headers, TROUBLE_HEADER
        )
    except OSError as exc:
        line = f"Tether is unreachable: its gateway at {gateway} did not answer ({exc})"
        return _trouble_answer(event, line, fail_closed), False
    try:
        decoded = json.loads(body) if body.strip() else None
    except ValueError:
        decoded = None
    if status == 200:
        # What went wrong behind the gateway, for an event whose answer cannot carry it.
        for line in trouble:
            _stderr(line)
        return (decoded if isinstance(decoded, dict) else None), True
    said = decoded.get("error") if isinstance(decoded, dict) else None
    line = f"Tether refused: {said}" if said else f"Tether's gateway answered HTTP {status}"
    return _trouble_answer(event, line, fail_closed, outage=status >= 500), False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tether hook",
        description="Answer an agent runtime's hook (JSON on stdin), through Tether's gateway.",
    )
    parser.add_argument("runtime", choices=list(runtimes.RUNTIMES))
    parser.add_argument("event", help=f"the hook event, e.g. Claude Code's {', '.join(EVENTS)}")
    parser.add_argument("--agent", required=True)
    parser.add_argument(
        "--fail-closed", action="store_true", help="deny tool calls when Tether cannot be reached"
    )
    parser.add_argument("--gateway", help=f"the gateway's URL (default {DEFAULT_GATEWAY_URL})")
    args = parser.parse_args(argv)

    adapter = runtimes.adapter(args.runtime)
    result: dict[str, Any] | None
    event = args.event
    claude = adapter.events.get(event, event)
    rendered = False
    try:
        raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
        payload = read_payload(io.BytesIO(raw), check_tool_input=adapter.name == "claude-code")
        event = str(payload.get("hook_event_name") or args.event)
        if event not in adapter.events:
            return 0  # an event Tether does not govern (installed by hand, or newer)
        claude = adapter.events[event]
        if not re.fullmatch(NAME_PATTERN, args.agent):
            # Refused here: a workflow started with it could not even decode its input.
            line = (
                f"Tether refused: --agent {args.agent!r} is not a valid agent name (lower-case "
                "letters, digits, '.', '_', '-'); run `tether hooks install` again"
            )
            result = _trouble_answer(claude, line, args.fail_closed, outage=False)
        else:
            gateway = locate_gateway(args.gateway)
            result, rendered = _forward(
                claude, args.agent, raw, gateway, args.fail_closed, adapter.name, event
            )
    except BadInput as exc:
        line = f"Tether refused the hook input: {exc}"
        result = _trouble_answer(claude, line, args.fail_closed, outage=False)
    except Exception as exc:  # whatever went wrong, the hook's mode decides the answer
        line = f"Tether's hook failed ({type(exc).__name__}: {str(exc)[:200]})"
        result = _trouble_answer(claude, line, args.fail_closed)
    if not rendered:
        result = adapter.render(claude, result)
    out, err, code = adapter.finish(claude, result)
    if err:
        print(err, file=sys.stderr)
    if out is not None:
        print(out)
    return code
