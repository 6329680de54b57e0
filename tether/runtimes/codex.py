"""Codex CLI (hooks.json / [hooks]; Claude-compatible names and fields, plus turn_id and model).

Its output schemas forbid unknown fields (`additionalProperties: false`), and an answer it cannot
parse counts as a failed hook, which lets the tool run; so only the fields its schema names are
kept, and a deny also exits 2 with the reason on stderr. It has no PostToolUseFailure, and its
PostToolUse gives a shell call's output without the exit code (0.169): an output naming an error
class, from a command that does not only read, is the failure (a response with a non-zero
`exit_code`, if one comes, too). Codex runs a hook only once it is trusted (/hooks in the CLI;
`--dangerously-bypass-hook-trust` unattended): an untrusted hook is skipped without a word.
Sources: docs/decisions.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tether.runtimes.base import (
    POST_COMPACT,
    POST_TOOL,
    POST_TOOL_FAILURE,
    PRE_TOOL,
    SESSION_START,
    STOP,
    Runtime,
    deny_reason,
    failure,
)

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


class Codex(Runtime):
    name = "codex"
    hook_file = Path(".codex") / "hooks.json"
    model_hosts = ("api.openai.com",)
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
                return failure(payload, str(output), code)
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
        reason = deny_reason(rendered) if claude == PRE_TOOL else None
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


RUNTIME = Codex()
