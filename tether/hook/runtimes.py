"""Every runtime's hooks, spoken as one: each adapter turns its runtime's event and input into the
Claude Code event Tether's decisions are made for (tether/hook/claude_code.py), and Tether's
answer back into what that runtime understands, with the exit code it needs.

Pinned to what each runtime documents (docs/decisions.md cites the sources):
- Claude Code: as is. A Stop block is exit 2 with the reason on stderr (shown to the model once).
- Codex CLI (hooks.json / [hooks]; Claude-compatible names and fields, plus turn_id and model):
  its output schemas forbid unknown fields (`additionalProperties: false`), and an answer it
  cannot parse counts as a failed hook, which lets the tool run; so only the fields its schema
  names are kept, and a deny also exits 2 with the reason on stderr. It has no
  PostToolUseFailure, and its PostToolUse gives a shell call's output without the exit code
  (0.169): an output naming an error class, from a command that does not only read, is the
  failure (a response with a non-zero `exit_code`, if one comes, too). Codex runs a hook only
  once it is trusted (/hooks in the CLI; `--dangerously-bypass-hook-trust` unattended): an
  untrusted hook is skipped without a word.
- Gemini CLI (settings.json hooks): BeforeTool/AfterTool (tool_response.error is a failure, and
  so is a shell command whose llmContent says `Exit Code: N`, N not 0: what 0.61 sends),
  AfterAgent (a deny makes the agent go on: the artifact check), PreCompress (advisory, before
  the compression: reported as the compaction), SessionStart/SessionEnd; deny is
  `{"decision": "deny", "reason": ...}`. Its tool names are mapped to Claude Code's
  (run_shell_command -> Bash, read_file -> Read, write_file -> Write, replace -> Edit).
- Cursor (.cursor/hooks.json, version 1): sessionStart, beforeShellExecution,
  beforeMCPExecution, afterShellExecution, afterMCPExecution, stop, sessionEnd; deny is
  `{"permission": "deny", "user_message", "agent_message"}`, a stop block a
  `followup_message`. Its after* hooks are fire-and-forget: the governors' directives reach a
  Cursor agent as the reason of its next denied call, never as context.

Standard library only: this runs in the hook process.
"""

from __future__ import annotations

import json
import re
from typing import Any

# The Claude Code events Tether decides on.
SESSION_START = "SessionStart"
PRE_TOOL = "PreToolUse"
POST_TOOL = "PostToolUse"
POST_TOOL_FAILURE = "PostToolUseFailure"
POST_COMPACT = "PostCompact"
STOP = "Stop"
SESSION_END = "SessionEnd"


def _deny_reason(answer: dict[str, Any] | None) -> str | None:
    out = (answer or {}).get("hookSpecificOutput") or {}
    if isinstance(out, dict) and out.get("permissionDecision") == "deny":
        return str(out.get("permissionDecisionReason") or "denied by Tether")
    return None


def _context(answer: dict[str, Any] | None) -> str | None:
    out = (answer or {}).get("hookSpecificOutput") or {}
    text = out.get("additionalContext") if isinstance(out, dict) else None
    return str(text) if text else None


def _block_reason(answer: dict[str, Any] | None) -> str | None:
    if answer and answer.get("decision") == "block":
        return str(answer.get("reason") or "blocked by Tether")
    return None


def _failure(payload: dict[str, Any], output: str, code: int) -> dict[str, Any]:
    """A Claude Code PostToolUseFailure for a call that failed with `code`: the error text in
    Claude Code's own form (`Exit code N` first), which the fingerprint reads."""
    return {**payload, "hook_event_name": POST_TOOL_FAILURE, "error": f"Exit code {code}\n{output}"}


class Adapter:
    """Claude Code itself: the identity."""

    name = "claude-code"
    # The runtime's event -> the Claude Code event it is decided as.
    events: dict[str, str] = {
        e: e for e in (SESSION_START, PRE_TOOL, POST_TOOL, POST_TOOL_FAILURE, POST_COMPACT, STOP)
    } | {SESSION_END: SESSION_END}

    def session_id(self, payload: dict[str, Any]) -> str | None:
        value = payload.get("session_id")
        return str(value) if value else None

    def to_claude(self, event: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """(the Claude Code event, its input) for this runtime's event; None to ignore it."""
        claude = self.events.get(event)
        if claude is None:
            return None
        translated = {**payload, "hook_event_name": claude}
        session = self.session_id(payload)
        if session:
            translated["session_id"] = session
        translated = self._input(claude, translated)
        # A post-tool event may turn out to be a failure (the exit code in its response).
        return str(translated.get("hook_event_name") or claude), translated

    def _input(self, claude: str, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def render(self, claude: str, answer: dict[str, Any] | None) -> dict[str, Any] | None:
        """Tether's (Claude Code shaped) answer in this runtime's form."""
        return answer

    def finish(self, claude: str, rendered: dict[str, Any] | None) -> tuple[str | None, str, int]:
        """(stdout, stderr, exit code) of the hook command."""
        reason = _block_reason(rendered) if claude == STOP else None
        if reason is not None:
            # Exit 2 with the reason on stderr: shown to the model once (the same block as JSON
            # is shown twice, the second time quoting the hook's command line).
            return None, reason, 2
        return (json.dumps(rendered) if rendered is not None else None), "", 0


# Codex's output schemas (codex-rs/hooks/schema/generated/*.command.output.schema.json): the
# top-level fields and the hookSpecificOutput fields each event accepts.
_CODEX_TOP = {"continue", "stopReason", "suppressOutput", "systemMessage"}
_CODEX_TOP_EXTRA = {POST_TOOL: {"decision", "reason"}, STOP: {"decision", "reason"}}
_CODEX_SPECIFIC = {
    SESSION_START: {"hookEventName", "additionalContext"},
    PRE_TOOL: {
        "hookEventName",
        "permissionDecision",
        "permissionDecisionReason",
        "additionalContext",
    },
    POST_TOOL: {"hookEventName", "additionalContext"},
}


class Codex(Adapter):
    name = "codex"
    events = {
        SESSION_START: SESSION_START,
        PRE_TOOL: PRE_TOOL,
        POST_TOOL: POST_TOOL,
        POST_COMPACT: POST_COMPACT,
        STOP: STOP,
    }

    def _input(self, claude: str, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("tool_name") == "apply_patch":
            payload = {**payload, **_patched_file(payload.get("tool_input"))}
        if claude != POST_TOOL:
            return payload
        response = payload.get("tool_response")
        if isinstance(response, str) and payload.get("tool_name") == "Bash":
            # What Codex 0.169 sends: the command's output, no exit code (the model is told
            # "Process exited with code N"; the hook is not). An output naming an error class,
            # from a command that does not only read, is the failure.
            return {**payload, "tool_response": {"stdout": response}, "exit_code_unknown": True}
        if isinstance(response, dict):
            code = response.get("exit_code")
            if isinstance(code, int) and code != 0:
                output = response.get("output") or response.get("stderr") or ""
                if not output:
                    output = response.get("stdout") or ""
                return _failure(payload, str(output), code)
        return payload

    def render(self, claude: str, answer: dict[str, Any] | None) -> dict[str, Any] | None:
        if answer is None:
            return None
        # Codex has one post-tool event: a failure is answered as its PostToolUse.
        claude = POST_TOOL if claude == POST_TOOL_FAILURE else claude
        allowed = _CODEX_TOP | _CODEX_TOP_EXTRA.get(claude, set())
        kept = {k: v for k, v in answer.items() if k in allowed}
        specific = answer.get("hookSpecificOutput")
        if isinstance(specific, dict) and claude in _CODEX_SPECIFIC:
            fields = {k: v for k, v in specific.items() if k in _CODEX_SPECIFIC[claude]}
            kept["hookSpecificOutput"] = {**fields, "hookEventName": claude}
        return kept or None

    def finish(self, claude: str, rendered: dict[str, Any] | None) -> tuple[str | None, str, int]:
        reason = _deny_reason(rendered) if claude == PRE_TOOL else None
        if reason is not None:
            # The deny as JSON and as exit 2: a deny Codex could not parse must still stop it.
            return json.dumps(rendered), reason, 2
        return super().finish(claude, rendered)


def _patched_file(tool_input: Any) -> dict[str, Any]:
    """Codex's apply_patch, as the Edit of its first file (`*** Update File: path`)."""
    text = (
        tool_input.get("input") or tool_input.get("patch") if isinstance(tool_input, dict) else ""
    )
    for line in str(text or tool_input or "").splitlines():
        for mark in ("*** Update File: ", "*** Add File: ", "*** Delete File: "):
            if line.startswith(mark):
                path = line[len(mark) :].strip()
                return {"tool_name": "Edit", "tool_input": {"file_path": path}}
    return {"tool_name": "Edit", "tool_input": {}}


_GEMINI_EXIT = re.compile(r"^Exit Code: (-?\d+)\s*$", re.MULTILINE)
_GEMINI_OUTPUT = re.compile(
    r"^Output: (.*?)(?=^Exit Code:|^Error:|^Signal:|^Process Group|\Z)", re.S | re.M
)

# Gemini CLI's built-in tools, as the Claude Code tools Tether fingerprints.
_GEMINI_TOOLS = {
    "run_shell_command": "Bash",
    "read_file": "Read",
    "read_many_files": "Read",
    "write_file": "Write",
    "replace": "Edit",
    "glob": "Glob",
    "search_file_content": "Grep",
    "web_fetch": "WebFetch",
}


class Gemini(Adapter):
    name = "gemini"
    events = {
        SESSION_START: SESSION_START,
        "BeforeTool": PRE_TOOL,
        "AfterTool": POST_TOOL,
        "PreCompress": POST_COMPACT,
        "AfterAgent": STOP,
        SESSION_END: SESSION_END,
    }

    def _input(self, claude: str, payload: dict[str, Any]) -> dict[str, Any]:
        tool = str(payload.get("tool_name") or "")
        if tool:
            tool_input = payload.get("tool_input")
            tool_input = dict(tool_input) if isinstance(tool_input, dict) else {}
            path = tool_input.get("absolute_path") or tool_input.get("file_path")
            if path and "file_path" not in tool_input:
                tool_input["file_path"] = path
            payload = {
                **payload,
                "tool_name": _GEMINI_TOOLS.get(tool, tool),
                "tool_input": tool_input,
            }
        if claude != POST_TOOL:
            return payload
        response = payload.get("tool_response")
        if isinstance(response, dict):
            error = response.get("error")
            content = _text(response.get("llmContent"))
            if error:
                text = error.get("message") if isinstance(error, dict) else error
                return _failure(payload, f"{text}\n{content}".strip(), 1)
            # A shell command's result (0.61): "Output: ...\nExit Code: N\n..." in llmContent,
            # no error field; a non-zero exit code is the failure.
            if payload.get("tool_name") != "Bash":
                return {**payload, "tool_response": content}
            # The command's own output, without the wrapper Gemini puts around it, so a failure
            # reads the same as through Claude Code (and a piped one is still caught).
            found = _GEMINI_OUTPUT.search(content)
            output = (found.group(1) if found else content).strip()
            code = _GEMINI_EXIT.search(content)
            if code and int(code.group(1)) != 0:
                return _failure(payload, output, int(code.group(1)))
            return {**payload, "tool_response": {"stdout": output}}
        return payload

    def render(self, claude: str, answer: dict[str, Any] | None) -> dict[str, Any] | None:
        if answer is None:
            return None
        out: dict[str, Any] = {}
        if answer.get("systemMessage"):
            out["systemMessage"] = answer["systemMessage"]
        if (reason := _deny_reason(answer)) is not None:
            out |= {"decision": "deny", "reason": reason}
        if (reason := _block_reason(answer)) is not None:
            # AfterAgent: the response is rejected and the reason sent as the next prompt.
            out |= {"decision": "deny", "reason": reason}
        if (text := _context(answer)) is not None:
            name = {POST_TOOL: "AfterTool", POST_TOOL_FAILURE: "AfterTool"}.get(claude, claude)
            out["hookSpecificOutput"] = {"hookEventName": name, "additionalContext": text}
        return out or None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, dict):
        return str(value.get("text") or value.get("output") or json.dumps(value)[:4000])
    return "" if value is None else str(value)


class Cursor(Adapter):
    name = "cursor"
    events = {
        "sessionStart": SESSION_START,
        "beforeShellExecution": PRE_TOOL,
        "beforeMCPExecution": PRE_TOOL,
        "afterShellExecution": POST_TOOL,
        "afterMCPExecution": POST_TOOL,
        "stop": STOP,
        "sessionEnd": SESSION_END,
    }

    def session_id(self, payload: dict[str, Any]) -> str | None:
        value = payload.get("conversation_id") or payload.get("session_id")
        return str(value) if value else None

    def _input(self, claude: str, payload: dict[str, Any]) -> dict[str, Any]:
        if "command" in payload and claude in (PRE_TOOL, POST_TOOL):
            payload = {
                **payload,
                "tool_name": "Bash",
                "tool_input": {"command": str(payload.get("command") or "")},
            }
            if claude == POST_TOOL:
                # No exit code in afterShellExecution: an output naming an error class, from a
                # command that does not only read, is the failure it reports.
                payload["tool_response"] = {"stdout": str(payload.get("output") or "")}
                payload["exit_code_unknown"] = True
        elif claude in (PRE_TOOL, POST_TOOL) and payload.get("tool_name"):
            raw = payload.get("tool_input")
            try:
                parsed = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                parsed = {"input": raw}
            payload = {
                **payload,
                "tool_name": f"mcp__{payload.get('tool_name')}",
                "tool_input": parsed if isinstance(parsed, dict) else {"input": parsed},
            }
            if claude == POST_TOOL:
                payload["tool_response"] = str(payload.get("result_json") or "")
        if claude == STOP:
            count = payload.get("loop_count")
            payload = {**payload, "stop_hook_active": isinstance(count, int) and count > 0}
        return payload

    def render(self, claude: str, answer: dict[str, Any] | None) -> dict[str, Any] | None:
        if answer is None:
            return None
        if (reason := _deny_reason(answer)) is not None:
            return {"permission": "deny", "user_message": reason, "agent_message": reason}
        if (reason := _block_reason(answer)) is not None:
            return {"followup_message": reason}
        if claude == SESSION_START and (text := _context(answer)) is not None:
            out: dict[str, Any] = {"additional_context": text}
            if answer.get("systemMessage"):
                out["user_message"] = answer["systemMessage"]
            return out
        return None


ADAPTERS: dict[str, Adapter] = {a.name: a for a in (Adapter(), Codex(), Gemini(), Cursor())}
RUNTIMES = tuple(ADAPTERS)


def adapter(runtime: str) -> Adapter:
    found = ADAPTERS.get(runtime)
    if found is None:
        raise KeyError(f"no hook adapter for runtime {runtime!r} ({', '.join(RUNTIMES)})")
    return found
