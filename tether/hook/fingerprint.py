"""What a tool call was, reduced to what the anti-loop governor compares.

A failing action is identified by the tool, the action (for a shell command: the program and
its subcommand, `kubectl set`), and a normalised error signature: the exit code, the error class
and the telling line of the message with numbers, paths, ids, URLs and timestamps removed. So
`kubectl set image deploy/api api=img:1.2 -n prod` and `kubectl --namespace prod set image ...
--record`, failing with the same permission error, are the same failing action.

Progress is told apart by the exact input: the very same command whose output changes (a poll)
is not a loop, while varied commands failing the same way are.

Standard library only: the Claude Code hook imports it on every tool call.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from typing import Any
from urllib.parse import urlsplit

SIGNATURE_LENGTH = 200
EXCERPT_LENGTH = 300
# The fingerprint reads a bounded window of any output (Claude Code itself middle-truncates a
# failing call's output above 10,000 characters), and every pattern runs on lines of at most
# MAX_LINE characters: a report costs linear time, whatever text it is sent.
MAX_TEXT = 64 * 1024
MAX_LINE = 1000

_WRAPPERS = {"sudo", "time", "env", "nohup", "exec", "command", "xargs", "timeout", "nice"}
_SETUP = {"cd", "export", "source", ".", "set", "pushd", "popd", "true"}
_SUBCOMMAND = re.compile(r"^[a-z][a-z0-9-]*$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_TELLING = re.compile(
    r"error|denied|forbidden|fatal|failed|failure|not found|cannot|can't|unauthori[sz]ed|"
    r"refused|invalid|exception|panic|timed out|no such",
    re.IGNORECASE,
)
_ERROR_CLASS = re.compile(
    r"\b([A-Z][A-Za-z0-9]*(?:Error|Exception|Denied|Forbidden|Unauthorized|NotFound|Timeout))\b"
    r"|\((Forbidden|Unauthorized|NotFound|Conflict|BadRequest|Invalid|AlreadyExists)\)"
)
_TEST_COMMAND = re.compile(
    r"(^|[\s/])(pytest|py\.test|tox|nox|jest|vitest|mocha|rspec|phpunit)\b"
    r"|\b(npm|pnpm|yarn|bun)\s+(run\s+)?test\b|\b(go|cargo|mix|dotnet)\s+test\b"
    r"|\bmake\s+(test|check)\b|\bpython3?\s+-m\s+(pytest|unittest)\b"
)
_TEST_SUMMARY = re.compile(
    r"(\d+\s+(passed|failed|errors?|tests?|failures?|skipped)[^\n]{0,80})", re.IGNORECASE
)

# Order matters: the broad patterns (numbers) come last.
_SCRUB = [
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"),
        "<t>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\b"), "<t>"),
    (re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE), "<url>"),
    (re.compile(r"(?<![\w<])(~|\.{1,2})?(/[\w.@%+-]+)+/?"), "<path>"),
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<id>",
    ),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,}\b", re.IGNORECASE), "<id>"),
    (re.compile(r"\b[\w-]+-[a-z0-9]{5,10}-[a-z0-9]{5}\b"), "<pod>"),
    (re.compile(r"\d+(\.\d+)*"), "#"),
    (re.compile(r"\s+"), " "),
]


# What looks like a secret is never sent on: the value after "Authorization:", "token=",
# "password:" and the like, tokens with well-known prefixes, JWTs, long random-looking strings.
_SECRETS = [
    (
        re.compile(
            r"(?i)\b(authorization|proxy-authorization)(\s*[:=]\s*)((bearer|basic|token)\s+)?[^\s\"',;]+"
        ),
        r"\1\2<redacted>",
    ),
    (
        re.compile(
            r"(?i)\b(token|password|passwd|secret|api[_-]?key)(\s*[:=]\s*)[\"']?[^\s\"',;]+"
        ),
        r"\1\2<redacted>",
    ),
    (
        re.compile(r"(?i)\b(bearer)(\s+)[^\s\"',;]+"),
        r"\1\2<redacted>",
    ),
    (re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{16,}|github_pat_[A-Za-z0-9_]{20,})"), "<redacted>"),
    (re.compile(r"\btether_agent_[A-Za-z0-9_-]{16,}"), "<redacted>"),
    (re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_-]{16,}"), "<redacted>"),
    (re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}"), "<redacted>"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "<redacted>"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), "<redacted>"),
    (
        re.compile(r"\b(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[A-Z])[A-Za-z0-9+/_-]{32,}"),
        "<redacted>",
    ),
]


def bounded(text: str) -> str:
    """At most MAX_TEXT characters (the head and the tail) in lines of at most MAX_LINE."""
    if len(text) > MAX_TEXT:
        half = MAX_TEXT // 2
        text = text[:half] + "\n" + text[-half:]
    return "\n".join(line[:MAX_LINE] for line in text.splitlines())


def redact(text: str) -> str:
    """The text with what looks like a secret replaced (on a bounded() text: linear time)."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def digest(value: Any) -> str:
    """A short stable digest of any JSON-able value."""
    raw = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()[:16]


def scrub(text: str) -> str:
    """The text with what varies between retries (numbers, paths, ids, times, URLs) removed."""
    out = text.strip().lower()
    for pattern, replacement in _SCRUB:
        out = pattern.sub(replacement, out)
    return out.strip()


def _exit_code(error: str) -> int | None:
    match = re.match(r"\s*exit code (-?\d+)", error, re.IGNORECASE)
    return int(match.group(1)) if match else None


def _telling_line(error: str) -> str:
    lines = [ln.strip() for ln in error.splitlines() if ln.strip()]
    if lines and _exit_code(lines[0]) is not None:
        lines = lines[1:]
    for line in lines:
        if _TELLING.search(line):
            return line
    return lines[0] if lines else ""


def error_signature(error: str) -> str:
    """`exit|class|message`: what stays the same when the same action fails the same way.

    The exit code counts only when the error says nothing else: `kubectl ... | tee out` hides
    kubectl's exit code behind tee's, yet fails the same way as the bare command."""
    error = bounded(error)
    match = _ERROR_CLASS.search(error)
    cls = (match.group(1) or match.group(2)) if match else ""
    message = scrub(redact(_telling_line(error)))[:SIGNATURE_LENGTH]
    code = _exit_code(error) if not (cls or message) else None
    return f"{'' if code is None else code}|{cls}|{message}"


# Programs whose output is text being read: an error class in it is what was searched for.
_READERS = {"grep", "egrep", "rg", "ag", "cat", "tail", "head", "less", "more", "awk", "sed"}
_READERS |= {"jq", "find", "ls", "echo", "printf", "journalctl", "git log", "git show", "diff"}
_MASKING = re.compile(r"(?<!\|)\|(?!\|)|\|\|\s*(true|:|echo\b)|;\s*(true|:|exit 0)\s*$")


def masked_failure(command: str, output: str, unknown_exit: bool = False) -> bool:
    """A command that "succeeded" only because a pipe or `|| true` hid its exit code, while its
    output names an error class: `kubectl set image ... | tee out` printing "(Forbidden)". With
    `unknown_exit` (a runtime that does not say the exit code: Cursor's afterShellExecution),
    any command whose output names an error class, unless it only reads (grep, tail)."""
    command, output = bounded(command), bounded(output)
    masking = unknown_exit or _MASKING.search(command)
    if not masking or not _ERROR_CLASS.search(output):
        return False
    action = command_action(command)
    return action not in _READERS and action.split(" ", 1)[0] not in _READERS


def _segment(command: str) -> str:
    """The part of a compound command that did the work: the last `&&`/`;`/`||` segment that
    is not setup (cd, export), and within it the first element of a pipe."""
    segments = [s.strip() for s in re.split(r"&&|\|\||;|\n", command) if s.strip()]
    chosen = ""
    for segment in segments:
        first = segment.split(maxsplit=1)[0] if segment.split() else ""
        if first not in _SETUP:
            chosen = segment
    return (chosen or (segments[-1] if segments else "")).split("|", 1)[0].strip()


def command_action(command: str) -> str:
    """`kubectl set`, `git push`, `pytest`: the program and its subcommand."""
    segment = _segment(command)
    try:
        words = shlex.split(segment)
    except ValueError:
        words = segment.split()
    while words and (_ASSIGNMENT.match(words[0]) or words[0] in _WRAPPERS):
        words = words[1:]
        # `timeout 30 cmd`, `nice -n 5 cmd`: skip the wrapper's own arguments
        while words and (words[0].startswith("-") or words[0].isdigit()):
            words = words[1:]
    if not words:
        return ""
    program = words[0].rsplit("/", 1)[-1]
    # A word right after a flag without `=` is taken as the flag's value (`-n prod`,
    # `--namespace prod`, `git -C dir push`); if that leaves nothing, the first word counts.
    after_flag = False
    fallback = ""
    for word in words[1:]:
        if word.startswith("-"):
            after_flag = "=" not in word
            continue
        if _SUBCOMMAND.match(word):
            if not after_flag:
                return f"{program} {word}"
            fallback = fallback or word
        elif not after_flag:
            break
        after_flag = False
    return f"{program} {fallback}" if fallback else program


def tool_action(tool: str, tool_input: dict[str, Any]) -> str:
    """The action a tool call performs, without the details that vary between retries."""
    if tool == "Bash":
        return f"Bash:{command_action(bounded(str(tool_input.get('command') or '')))}"
    for key in ("file_path", "notebook_path", "path"):
        if tool_input.get(key):
            return f"{tool}:{tool_input[key]}"
    if tool_input.get("url"):
        return f"{tool}:{urlsplit(str(tool_input['url'])).netloc}"
    return tool


def is_test_command(tool: str, tool_input: dict[str, Any]) -> bool:
    command = bounded(str(tool_input.get("command") or ""))
    return tool == "Bash" and bool(_TEST_COMMAND.search(command))


def test_summary(output: str) -> str:
    """`3 passed, 1 failed in 0.4s` and the like, when the output has one."""
    found = _TEST_SUMMARY.findall(output)
    return found[-1][0].strip()[:EXCERPT_LENGTH] if found else ""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        parts = [str(value.get(k) or "") for k in ("stdout", "stderr", "output", "content")]
        joined = "\n".join(p for p in parts if p)
        return joined or json.dumps(value, sort_keys=True, default=str)
    return json.dumps(value, sort_keys=True, default=str)


def claude_code_tool_call(event: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The `ToolCall` contract (as JSON) for a Claude Code PostToolUse / PostToolUseFailure
    payload; None for other events or an interrupted call (the user stopped it, not a loop)."""
    if event not in ("PostToolUse", "PostToolUseFailure") or payload.get("is_interrupt"):
        return None
    tool = str(payload.get("tool_name") or "unknown")[:100]
    tool_input = payload.get("tool_input")
    if not isinstance(tool_input, dict):
        tool_input = {}
    ok = event == "PostToolUse"
    full = _text(payload.get("tool_response") if ok else payload.get("error") or "")
    output = bounded(full)
    unknown = bool(payload.get("exit_code_unknown"))
    if (
        ok
        and tool == "Bash"
        and masked_failure(str(tool_input.get("command") or ""), output, unknown)
    ):
        ok = False
    call: dict[str, Any] = {
        "tool": tool,
        "ok": ok,
        "action": tool_action(tool, tool_input)[:200],
        "input_digest": digest(tool_input),
        "output_digest": digest(full),
    }
    if not ok:
        call["signature"] = error_signature(output)
        call["error"] = redact(_telling_line(output))[:EXCERPT_LENGTH]
        call["exit_code"] = _exit_code(output)
    if tool in ("Edit", "Write", "MultiEdit", "NotebookEdit"):
        path = tool_input.get("file_path") or tool_input.get("notebook_path")
        if path:
            call["file_path"] = str(path)[:500]
    if is_test_command(tool, tool_input):
        call["test"] = redact(bounded(str(tool_input.get("command")))[:MAX_LINE])[:EXCERPT_LENGTH]
        call["test_summary"] = redact(test_summary(output))
    if payload.get("tool_use_id"):
        call["tool_use_id"] = str(payload["tool_use_id"])[:100]
    return call
