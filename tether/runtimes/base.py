"""What every runtime module says, and Claude Code's hook language, which Tether decides in.

A runtime module (one per runtime: `claude_code`, `codex`, `gemini`, `cursor`) holds all Tether
knows of that runtime, and a new runtime is one new module and a line in `tether.runtimes`:

- hook translation: the runtime's events and input as the Claude Code event Tether's decisions
  are made for (`events`, `to_claude`), and Tether's answer back in its form, with the exit code
  it needs (`render`, `finish`); compaction is one of those events (PostCompact, Gemini's
  PreCompress);
- install: where `tether hooks install` writes its hooks and each entry's shape (`hook_file`,
  `hook_entry`, `finish_config`); Claude Code's own install (HTTP hooks and a launcher) is
  tether/hook/install.py's `install`;
- running it: the model API's hosts the sandbox lets it reach (`model_hosts`), the argv
  `tether run` starts it with (`argv`; None: run it as runtime "command"), and how its output
  tells its usage (`usage`).

Standard library only: the hook process imports this, on every tool call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

# The Claude Code events Tether decides on.
SESSION_START = "SessionStart"
PRE_TOOL = "PreToolUse"
POST_TOOL = "PostToolUse"
POST_TOOL_FAILURE = "PostToolUseFailure"
POST_COMPACT = "PostCompact"
STOP = "Stop"
SESSION_END = "SessionEnd"

# Seconds an installed hook may take: a session's start and stop read git, the forge and the
# credentials; every other hook answers in milliseconds.
SLOW_HOOK_SECONDS = 60
HOOK_SECONDS = 15


def deny_reason(answer: dict[str, Any] | None) -> str | None:
    out = (answer or {}).get("hookSpecificOutput") or {}
    if isinstance(out, dict) and out.get("permissionDecision") == "deny":
        return str(out.get("permissionDecisionReason") or "denied by Tether")
    return None


def context_text(answer: dict[str, Any] | None) -> str | None:
    out = (answer or {}).get("hookSpecificOutput") or {}
    text = out.get("additionalContext") if isinstance(out, dict) else None
    return str(text) if text else None


def block_reason(answer: dict[str, Any] | None) -> str | None:
    if answer and answer.get("decision") == "block":
        return str(answer.get("reason") or "blocked by Tether")
    return None


def failure(payload: dict[str, Any], output: str, code: int) -> dict[str, Any]:
    """A Claude Code PostToolUseFailure for a call that failed with `code`: the error text in
    Claude Code's own form (`Exit code N` first), which the fingerprint reads."""
    return {**payload, "hook_event_name": POST_TOOL_FAILURE, "error": f"Exit code {code}\n{output}"}


class Runtime:
    """A runtime as Tether sees it. The defaults are Claude Code's own hook language (the
    identity); each runtime module overrides what differs."""

    name: str = ""
    # The runtime's event -> the Claude Code event it is decided as.
    events: dict[str, str] = {
        e: e for e in (SESSION_START, PRE_TOOL, POST_TOOL, POST_TOOL_FAILURE, POST_COMPACT, STOP)
    } | {SESSION_END: SESSION_END}
    # Where `tether hooks install --runtime NAME` writes its hooks, under the project.
    hook_file: Path | None = None
    # The hosts its model API is on, when its own variables (ANTHROPIC_BASE_URL, ...) do not
    # name another: what the sandbox lets it reach besides the gateway.
    model_hosts: tuple[str, ...] = ()
    # How the runner reads the process's usage from its output, unless run.usage says.
    usage: Literal["stream-json", "none"] = "none"

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
        reason = block_reason(rendered) if claude == STOP else None
        if reason is not None:
            # Exit 2 with the reason on stderr: shown to the model once (the same block as JSON
            # is shown twice, the second time quoting the hook's command line).
            return None, reason, 2
        return (json.dumps(rendered) if rendered is not None else None), "", 0

    # --- install -------------------------------------------------------------------------------

    def hook_seconds(self, event: str) -> int:
        slow = self.events.get(event) in (SESSION_START, STOP)
        return SLOW_HOOK_SECONDS if slow else HOOK_SECONDS

    def hook_entry(self, event: str, command: str) -> dict[str, Any]:
        """The entry that runs Tether's hook for `event` (one group of one handler)."""
        handler = {"type": "command", "command": command, "timeout": self.hook_seconds(event)}
        return {"hooks": [handler]}

    def grouped(self) -> bool:
        """Whether an event's entries are groups of handlers (most runtimes) or handlers."""
        return True

    def finish_config(self, data: dict[str, Any]) -> None:
        """Anything the configuration file needs besides the hooks."""

    # --- running it ----------------------------------------------------------------------------

    def argv(
        self,
        binary: str,
        session: str,
        resume: bool,
        prompt: str,
        model: str | None,
        args: list[str],
    ) -> list[str] | None:
        """The command `tether run` starts the runtime with, headless; None when Tether does
        not start it itself (give the agent runtime "command" and its run.command)."""
        return None
