"""The session protocol of the agents' hooks, in the gateway, async: what each hook event of
an agent's runtime (in Claude Code's terms, tether/runtimes/ translates the others)
asks of its session workflow, and the answer. Every call to Temporal is awaited on the
gateway's loop (transport.SealedTemporal, sealed for the agent and runtime session the request
speaks for); only the transcript's reading (a file another process writes, and the cursor's
file lock) goes to a thread. What runs in the agent's own process (the forwarder, the wire
format, the rendering per runtime) stays in tether/hook/, standard library only.

Events:
- SessionStart: start or attach to the agent's session workflow (the `attach` update, the same
  protocol as the Python client: the workflow decides to resume or supersede); answer with the
  startup brief as additionalContext, or with the reason the session is blocked.
- PreToolUse: deny every tool call while the session is blocked (or not open), held by a
  governor (a loop, a cost pause) or ending after a handoff, with the reason.
- PostToolUse / PostToolUseFailure: report the call (its fingerprint: tool, action, normalised
  error signature, never the raw output) with the context usage and spend read from the
  transcript; the governors' directives come back as additionalContext.
- PostCompact: report the compaction (it re-arms the memory governor) and its summary.
- Stop: block stopping once, with the reason, while the session has no deliverable yet
  (respects stop_hook_active).
- SessionEnd: end the session; the artifact test runs in the workflow, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether.errors import SESSION_ENDED
from tether.gateway.transport import SealedTemporal
from tether.hook.claude_code import (
    CURSOR_DAYS,
    END_REPORT_TIMEOUT,
    END_TIMEOUT,
    REPORT_TIMEOUT,
    STARTUP_TIMEOUT,
    TRANSCRIPT_WAIT,
    claude_code_window,
    context_answer,
    deny_answer,
    hooks_home,
    trouble_answer,
)
from tether.hook.wire import NOT_RUNNING, Refused, Unreachable, request_id


class HookSession:
    """The decisions for one hook of one agent's; `temporal` is the gateway's sealed client
    (transport.SealedTemporal), `env` the runtime's environment as the hook sees it, `home`
    where transcript cursors are kept."""

    def __init__(
        self,
        agent: str,
        temporal: SealedTemporal,
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
        self.cursors = (home or hooks_home()) / "hooks" / agent

    async def gate(self) -> dict[str, Any] | None:
        return await self.temporal.gate()

    async def report(
        self,
        event: str,
        payload: dict[str, Any],
        within: float | None = None,
        always: bool = False,
    ) -> dict[str, Any] | None:
        """Send what happened (tool call, context, spend) to the governors; their answer.
        Nothing is sent when nothing happened, unless `always`."""
        within = self.report_timeout if within is None else within
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
            return await self._send(report, session_id, within) if report or always else None
        cursor = Cursor(self.cursors, session_id)
        # The cursor's lock is a file lock another request may hold: taken in a thread, so
        # that the loop never waits on it.
        await asyncio.to_thread(cursor.__enter__)
        try:
            staged = cursor.pending()
            if staged is not None:
                # A report that got no answer: the same update id again (counted once).
                if await self._send(staged["report"], None, within, staged["id"]) is None:
                    cursor.unstage()
                else:
                    cursor.settle()
            path = Path(str(transcript)).expanduser()
            tool_use = payload.get("tool_use_id")
            if isinstance(tool_use, str) and tool_use and event != "PostCompact":
                await asyncio.to_thread(cursor.wait_for, path, tool_use, TRANSCRIPT_WAIT)
            reading = await asyncio.to_thread(cursor.read, path)
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
            answer = await self._send(report, session_id, within, update_id)
            if answer is None:
                cursor.unstage()
            else:
                cursor.settle()
            return answer
        finally:
            cursor.__exit__(None, None, None)

    async def _send(
        self,
        report: dict[str, Any],
        session_id: str | None,
        within: float = REPORT_TIMEOUT,
        update_id: str | None = None,
    ) -> dict[str, Any] | None:
        if session_id:
            report["external_id"] = session_id
        try:
            return await self.temporal.report(report, within, update_id)
        except Refused:
            return None  # the session has ended: PreToolUse says so on the next call

    async def start_or_resume(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Start-or-attach, with the Python client's protocol: the workflow decides to resume
        or supersede; an ended (or just superseded) session is waited for until its workflow
        has closed, then the next one starts."""
        arg = {
            "agent": self.agent,
            "external_id": payload.get("session_id") or None,
            "runtime": self.runtime,
            "source": str(payload.get("source") or "startup"),
        }
        return dict(await self.temporal.start_session(self.task_queue, arg, STARTUP_TIMEOUT))

    async def handle(self, event: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        if event == "SessionStart":
            # SessionStart(compact) reattaches only: PostCompact reports the compaction.
            from tether.hook.transcript import Cursor

            await asyncio.to_thread(Cursor.prune, self.cursors, CURSOR_DAYS * 86400)
            started = await self.start_or_resume(payload)
            if started.get("state") == "blocked":
                notice = str(started.get("notice") or "blocked")
                return context_answer(event, notice, user_message=f"Tether: {notice}")
            brief = started.get("brief") or {}
            return context_answer(event, str(brief.get("text") or "Tether: no brief was produced."))

        if event == "PreToolUse":
            gate = await self.gate()
            if (
                gate is not None
                and gate.get("state") == "ended"
                and gate.get("deny")
                and gate.get("external_id") in (None, payload.get("session_id"))
            ):
                # This runtime session's own Tether session ended (a handoff, the founder):
                # Tether's decision, denied with its reason even when failing open.
                return deny_answer(str(gate["deny"]))
            problem = self._not_governed(gate, payload)
            if problem:
                return deny_answer(problem) if self.fail_closed else {"systemMessage": problem}
            if gate is not None and gate.get("deny"):
                # Blocked, still starting, held by a governor, or ending after a handoff.
                return deny_answer(str(gate["deny"]))
            return None

        if event in ("PostToolUse", "PostToolUseFailure", "PostCompact"):
            # One round trip on every tool call: the update itself refuses a session that is
            # not open or belongs to another runtime session.
            answer = await self.report(event, payload)
            if not answer or event == "PostCompact":
                return None
            texts = [str(d.get("text")) for d in answer.get("directives") or []]
            if not texts:
                return None
            # Context only: a `decision: "block"` here stops nothing (the tool already ran) and
            # makes Claude Code show the model the text twice, once as a "hook blocking error"
            # naming the hook's command line. The next PreToolUse denies, with the reason.
            return context_answer(event, "\n".join(texts))

        if event == "Stop":
            if payload.get("stop_hook_active"):
                return None  # stop was already blocked once; let it stop
            # The turn's spend, if any, is reported, and its answer says whether this runtime
            # session's Tether session is open and active; with nothing to report, the gate (a
            # query, cheaper than an update) says it. Only then is the deliverable checked.
            answer = await self.report(event, payload)
            if answer is None:
                gate = await self.gate()
                mine = gate is not None and gate.get("external_id") in (
                    None,
                    payload.get("session_id"),
                )
                answer = gate if mine else None
            if answer is None or answer.get("state") != "active":
                return None
            try:
                result = await self.temporal.check_deliverable(STARTUP_TIMEOUT)
            except Refused:
                return None
            if not result.get("passed"):
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
                await self.report(event, payload, END_REPORT_TIMEOUT)
            reason = f"{self.runtime} SessionEnd ({payload.get('reason') or 'other'})"
            end = {"reason": reason, "by": self.runtime, "external_id": payload.get("session_id")}
            try:
                await self.temporal.request_end(end, END_TIMEOUT)
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


async def answer(
    hook: HookSession, event: str, payload: dict[str, Any], say: Callable[[str], None]
) -> dict[str, Any] | None:
    """The hook's answer to one event, whatever happens: a failure is answered as the agent's
    mode says (deny or let through), in one line saying why (to `say` when the event has no
    answer to carry it)."""
    closed = hook.fail_closed
    try:
        return await hook.handle(event, payload)
    except Unreachable as exc:
        return trouble_answer(event, f"Tether is unreachable: {exc}", closed, say=say)
    except Refused as exc:
        return trouble_answer(event, f"Tether refused: {exc}", closed, say=say)
    except Exception as exc:  # whatever went wrong, the hook's mode decides the answer
        line = f"Tether's hook failed ({type(exc).__name__}: {str(exc)[:200]})"
        return trouble_answer(event, line, closed, say=say)
