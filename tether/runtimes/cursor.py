"""Cursor (.cursor/hooks.json, version 1).

sessionStart, beforeShellExecution, beforeMCPExecution, afterShellExecution, afterMCPExecution,
stop, sessionEnd; deny is `{"permission": "deny", "user_message", "agent_message"}`, a stop
block a `followup_message`. Its after* hooks are fire-and-forget: the governors' directives
reach a Cursor agent as the reason of its next denied call, never as context. Its entries are
handlers, not groups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tether.runtimes.base import (
    POST_TOOL,
    PRE_TOOL,
    SESSION_END,
    SESSION_START,
    STOP,
    Runtime,
    block_reason,
    context_text,
    deny_reason,
)


class Cursor(Runtime):
    name = "cursor"
    hook_file = Path(".cursor") / "hooks.json"
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
        if (reason := deny_reason(answer)) is not None:
            return {"permission": "deny", "user_message": reason, "agent_message": reason}
        if (reason := block_reason(answer)) is not None:
            return {"followup_message": reason}
        if claude == SESSION_START and (text := context_text(answer)) is not None:
            out: dict[str, Any] = {"additional_context": text}
            if answer.get("systemMessage"):
                out["user_message"] = answer["systemMessage"]
            return out
        return None

    def hook_entry(self, event: str, command: str) -> dict[str, Any]:
        return {"command": command}

    def grouped(self) -> bool:
        return False

    def finish_config(self, data: dict[str, Any]) -> None:
        data["version"] = 1


RUNTIME = Cursor()
