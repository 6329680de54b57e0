"""Gemini CLI (settings.json hooks).

BeforeTool/AfterTool (tool_response.error is a failure, and so is a shell command whose
llmContent says `Exit Code: N`, N not 0: what 0.61 sends), AfterAgent (a deny makes the agent go
on: the artifact check), PreCompress (advisory, before the compression: reported as the
compaction), SessionStart/SessionEnd; deny is `{"decision": "deny", "reason": ...}`. Its tool
names are mapped to Claude Code's (run_shell_command -> Bash, read_file -> Read, write_file ->
Write, replace -> Edit). Its hook timeouts are milliseconds, and a tool hook needs a matcher."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tether.runtimes.base import (
    POST_COMPACT,
    POST_TOOL,
    POST_TOOL_FAILURE,
    PRE_TOOL,
    SESSION_END,
    SESSION_START,
    STOP,
    Runtime,
    block_reason,
    context_text,
    deny_reason,
    failure,
)

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


class Gemini(Runtime):
    name = "gemini"
    hook_file = Path(".gemini") / "settings.json"
    model_hosts = ("generativelanguage.googleapis.com",)
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
                return failure(payload, f"{text}\n{content}".strip(), 1)
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
                return failure(payload, output, int(code.group(1)))
            return {**payload, "tool_response": {"stdout": output}}
        return payload

    def render(self, claude: str, answer: dict[str, Any] | None) -> dict[str, Any] | None:
        if answer is None:
            return None
        out: dict[str, Any] = {}
        if answer.get("systemMessage"):
            out["systemMessage"] = answer["systemMessage"]
        if (reason := deny_reason(answer)) is not None:
            out |= {"decision": "deny", "reason": reason}
        if (reason := block_reason(answer)) is not None:
            # AfterAgent: the response is rejected and the reason sent as the next prompt.
            out |= {"decision": "deny", "reason": reason}
        if (text := context_text(answer)) is not None:
            name = {POST_TOOL: "AfterTool", POST_TOOL_FAILURE: "AfterTool"}.get(claude, claude)
            out["hookSpecificOutput"] = {"hookEventName": name, "additionalContext": text}
        return out or None

    def hook_entry(self, event: str, command: str) -> dict[str, Any]:
        seconds = self.hook_seconds(event)
        handler = {"type": "command", "command": command, "name": "tether"}
        entry: dict[str, Any] = {"hooks": [handler | {"timeout": seconds * 1000}]}
        if event in ("BeforeTool", "AfterTool"):
            entry = {"matcher": ".*", **entry}
        return entry


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value)
    if isinstance(value, dict):
        return str(value.get("text") or value.get("output") or json.dumps(value)[:4000])
    return "" if value is None else str(value)


RUNTIME = Gemini()
