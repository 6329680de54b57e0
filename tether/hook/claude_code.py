"""The Claude Code hook adapter: `tether hook claude-code EVENT --agent NAME`.

Claude Code posts each hook's input to the gateway (`type: "http"` hooks), or runs this module
as a command with the input on stdin, which forwards it to the gateway with the agent's token
(TETHER_AGENT_TOKEN) and prints the answer (https://code.claude.com/docs/en/hooks). Either way
the decisions below are made in the gateway, which alone holds a key Tether's workflows accept.
The command sits on the agent's hot path, so it uses only the standard library.

What each event asks of the agent's session, and the answer, is decided in the gateway
(tether/gateway/hooks.py, the session protocol).

If Tether cannot be reached, tool calls are denied when the hook runs with --fail-closed (a
`type: "http"` hook cannot do that: Claude Code lets the call through when the gateway does not
answer), and the hook always says why in one line.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether import runtimes
from tether.hook.wire import (
    http_request,
)
from tether.names import (
    DEFAULT_GATEWAY_URL,
    NAME_PATTERN,
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


def hooks_home() -> Path:
    return Path(os.environ.get("TETHER_HOME") or Path.home() / ".tether").expanduser()


def locate_gateway(flag: str | None) -> str:
    """The gateway's URL: the flag, then TETHER_GATEWAY_URL, then the stack.json of a running
    `tether up`, then the default."""
    url = flag or os.environ.get("TETHER_GATEWAY_URL") or _stack(hooks_home()).get("gateway_url")
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


def context_answer(event: str, text: str, user_message: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "hookSpecificOutput": {"hookEventName": event, "additionalContext": text[:9900]}
    }
    if user_message:
        answer["systemMessage"] = user_message
    return answer


def deny_answer(reason: str) -> dict[str, Any]:
    return {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }
    }


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


def trouble_answer(
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
            return deny_answer(f"{line}.{tail}")
        return {"systemMessage": f"{line}; tool calls are not governed."}
    if event == "SessionStart":
        tail = " Tool calls will be denied until it is back." if fail_closed and outage else ""
        return context_answer(event, f"{line}. No startup brief.{tail}", user_message=line)
    say(line)
    return None


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
        return trouble_answer(event, line, fail_closed, outage=False), False
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
        return trouble_answer(event, line, fail_closed), False
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
    return trouble_answer(event, line, fail_closed, outage=status >= 500), False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tether hook",
        description="Answer an agent runtime's hook (JSON on stdin), through Tether's gateway.",
    )
    parser.add_argument("runtime", choices=list(runtimes.NAMES))
    parser.add_argument("event", help=f"the hook event, e.g. Claude Code's {', '.join(EVENTS)}")
    parser.add_argument("--agent", required=True)
    parser.add_argument(
        "--fail-closed", action="store_true", help="deny tool calls when Tether cannot be reached"
    )
    parser.add_argument("--gateway", help=f"the gateway's URL (default {DEFAULT_GATEWAY_URL})")
    args = parser.parse_args(argv)

    adapter = runtimes.get(args.runtime)
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
            result = trouble_answer(claude, line, args.fail_closed, outage=False)
        else:
            gateway = locate_gateway(args.gateway)
            result, rendered = _forward(
                claude, args.agent, raw, gateway, args.fail_closed, adapter.name, event
            )
    except BadInput as exc:
        line = f"Tether refused the hook input: {exc}"
        result = trouble_answer(claude, line, args.fail_closed, outage=False)
    except Exception as exc:  # whatever went wrong, the hook's mode decides the answer
        line = f"Tether's hook failed ({type(exc).__name__}: {str(exc)[:200]})"
        result = trouble_answer(claude, line, args.fail_closed)
    if not rendered:
        result = adapter.render(claude, result)
    out, err, code = adapter.finish(claude, result)
    if err:
        print(err, file=sys.stderr)
    if out is not None:
        print(out)
    return code
