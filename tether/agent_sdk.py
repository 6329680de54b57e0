"""Tether's guardrails for agents built on the Claude Agent SDK (Python, `claude-agent-sdk`).

    from claude_agent_sdk import query
    from tether.agent_sdk import Tether

    tether = Tether("coder")               # TETHER_AGENT_TOKEN and TETHER_GATEWAY_URL
    brief = await tether.start()           # the startup brief (or why the session is blocked)
    async for message in query(prompt=f"{brief}\\n\\n{task}", options=tether.options(cwd=repo)):
        await tether.observe(message)      # spend and context, from the SDK's own messages
    await tether.end()

`hooks()` gives Tether's hooks as `HookMatcher`s (PreToolUse denies while the session is held
or blocked; PostToolUse / PostToolUseFailure feed the anti-loop governor; Stop refuses to stop
without the deliverable) and `can_use_tool` answers permission prompts the same way. Everything
goes through the gateway with the agent's token, exactly as Claude Code's hooks do.

What differs from Claude Code's hooks (https://code.claude.com/docs/en/agent-sdk/python):
SessionStart and SessionEnd are TypeScript-only in the Python SDK, so `start()` and `end()` say
them; the SDK's Claude Code session id is fixed by `options()` (`session_id`), so the hooks are
bound to the session `start()` opened. Spend is read from the SDK's messages (`observe`: each
AssistantMessage's usage once per message id, and each ResultMessage's
`model_usage` beyond those), so the hooks are sent without the transcript path: counted once.

Needs `pip install claude-agent-sdk` (not a dependency of Tether itself).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from typing import Any
from urllib.parse import quote

from tether.hook.claude_code import TOKEN_ENV
from tether.hook.transcript import COST_STATE_KEYS, USAGE_KEYS
from tether.hook.wire import http_request
from tether.names import DEFAULT_GATEWAY_URL

HOOK_EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure", "Stop")
log = logging.getLogger("tether.agent_sdk")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


class Tether:
    """One agent's session, governed by Tether through its gateway."""

    def __init__(
        self,
        agent: str,
        *,
        token: str | None = None,
        gateway: str | None = None,
        session_id: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.agent = agent
        self.token = token or os.environ.get(TOKEN_ENV, "").strip()
        if not self.token:
            raise ValueError(
                f"no agent token: pass token= or set {TOKEN_ENV} (the founder mints one with "
                f"`tether agent token {agent}`)"
            )
        url = gateway or os.environ.get("TETHER_GATEWAY_URL") or DEFAULT_GATEWAY_URL
        self.gateway = url.rstrip("/")
        # The Claude Code session the SDK runs (options() passes it as --session-id).
        self.session_id = session_id or str(uuid.uuid4())
        self.timeout = timeout
        self._seen: set[str] = set()
        # Tokens the assistant messages of the current query showed, per model.
        self._query: dict[str, dict[str, int]] = {}
        # Usage not delivered yet (the gateway did not answer).
        self._unsent: dict[str, dict[str, int]] = {}

    # --- the session ----------------------------------------------------------------------

    async def start(self) -> str:
        """Open (or resume) the agent's session: the startup brief to put before the prompt, or
        the reason the session is blocked."""
        answer = await self._hook("SessionStart", {"source": "startup"})
        out = (answer or {}).get("hookSpecificOutput") or {}
        return str(out.get("additionalContext") or "")

    async def end(self, reason: str = "other") -> None:
        await self._hook("SessionEnd", {"reason": reason})

    def options(self, **kw: Any) -> Any:
        """`ClaudeAgentOptions` with Tether's hooks, `can_use_tool` and the session id, plus
        whatever else is given."""
        from claude_agent_sdk import ClaudeAgentOptions

        if kw.get("permission_mode") != "bypassPermissions":
            # Consulted only when the SDK would ask; the PreToolUse hook gates every call.
            kw.setdefault("can_use_tool", self.can_use_tool)
        return ClaudeAgentOptions(hooks=self.hooks(), session_id=self.session_id, **kw)

    # --- hooks ------------------------------------------------------------------------------

    def hooks(self) -> dict[Any, list[Any]]:
        from claude_agent_sdk import HookMatcher

        return {event: [HookMatcher(hooks=[self._callback])] for event in HOOK_EVENTS}

    async def _callback(self, input_data: Any, tool_use_id: str | None, context: Any) -> Any:
        payload = dict(input_data)
        event = str(payload.get("hook_event_name") or "")
        # Spend comes from the SDK's messages (observe), not the transcript.
        payload.pop("transcript_path", None)
        answer = await self._hook(event, payload)
        if event == "Stop" and answer and answer.get("decision") == "block":
            return {"decision": "block", "reason": answer.get("reason")}
        return answer or {}

    async def can_use_tool(self, tool_name: str, tool_input: dict[str, Any], context: Any) -> Any:
        from claude_agent_sdk import PermissionResultAllow, PermissionResultDeny

        answer = await self._hook(
            "PreToolUse", {"tool_name": tool_name, "tool_input": dict(tool_input)}
        )
        out = (answer or {}).get("hookSpecificOutput") or {}
        if out.get("permissionDecision") == "deny":
            return PermissionResultDeny(message=str(out.get("permissionDecisionReason")))
        return PermissionResultAllow()

    async def _hook(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        body = {**payload, "hook_event_name": event, "session_id": self.session_id}
        body.setdefault("cwd", os.getcwd())
        url = f"{self.gateway}/hooks/claude-code/{event}?agent={quote(self.agent)}"
        try:
            status, raw = await self._post(url, body)
        except OSError as exc:
            if event == "PreToolUse":
                reason = f"Tether is unreachable ({exc}); tool calls are denied until it is back"
                return {
                    "hookSpecificOutput": {
                        "hookEventName": "PreToolUse",
                        "permissionDecision": "deny",
                        "permissionDecisionReason": reason,
                    }
                }
            return None
        if status != 200 or not raw.strip():
            return None
        found = json.loads(raw)
        return found if isinstance(found, dict) else None

    async def _post(self, url: str, body: dict[str, Any]) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        data = json.dumps(body).encode()
        status, raw, _ = await asyncio.to_thread(
            http_request, "POST", url, data, self.timeout, headers
        )
        return status, raw

    # --- spend and context --------------------------------------------------------------------

    async def observe(self, message: Any) -> dict[str, Any] | None:
        """Count an SDK message: an AssistantMessage's usage (once per message id; the main
        thread's also sets the context in use), and at a ResultMessage what its per-model
        usage holds beyond those (a compaction's or a side request's tokens). Tether prices the
        tokens; each is counted once. Returns the governors' answer when something was
        reported."""
        kind = type(message).__name__
        report: dict[str, Any] = {}
        if kind == "AssistantMessage" and isinstance(getattr(message, "usage", None), dict):
            usage = message.usage
            counts = {name: _count(usage.get(key)) for key, name in USAGE_KEYS}
            if getattr(message, "parent_tool_use_id", None) is None:
                report["context_tokens"] = sum(
                    counts[n] for n in ("input", "cache_read", "cache_write")
                )
            key = str(getattr(message, "message_id", None) or "")
            if key and key not in self._seen:
                self._seen.add(key)
                model = str(message.model or "unknown")
                report["usage"] = {model: counts}
                held = self._query.setdefault(model, {})
                for name, value in counts.items():
                    held[name] = held.get(name, 0) + value
        elif kind == "ResultMessage":
            models = getattr(message, "model_usage", None) or {}
            rest: dict[str, dict[str, int]] = {}
            for model, found in models.items():
                if not isinstance(found, dict):
                    continue
                held = self._query.get(str(model), {})
                left = {
                    name: max(_count(found.get(key)) - held.get(name, 0), 0)
                    for key, name in COST_STATE_KEYS
                }
                if any(left.values()):
                    rest[str(model)] = left
            self._query = {}
            if rest:
                report["usage"] = rest
        if not report:
            return None
        # Usage a report could not deliver travels with the next one: none is lost.
        usage = report.get("usage") or {}
        for model, counts in self._unsent.items():
            mine = usage.setdefault(model, {})
            for name, value in counts.items():
                mine[name] = mine.get(name, 0) + value
        if usage:
            report["usage"] = usage
        self._unsent = {}
        report["external_id"] = self.session_id
        try:
            status, raw = await self._post(
                f"{self.gateway}/v1/session/report", {"agent": self.agent, **report}
            )
        except OSError as exc:
            status, raw = 0, str(exc).encode()
        if status == 200:
            found = json.loads(raw or b"{}").get("result")
            return found if isinstance(found, dict) else None
        if status != 409:  # 409: refused (the session ended): nothing to keep it for
            self._unsent = usage
            log.warning("Tether did not take the spend report (%s); it goes with the next", status)
        return None
