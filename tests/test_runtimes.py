"""The same verdicts through every runtime's hooks (issue 17): the incidents' agent side, replayed
through `tether hook RUNTIME EVENT` for Claude Code, Codex CLI, Gemini CLI and Cursor against a
real gateway and worker, ends with the same guardrail verdict. One row per runtime.

The payloads are each runtime's own, shaped by its published schema:
- Claude Code: https://code.claude.com/docs/en/hooks (and the real CLI in test_claude_code.py).
- Codex CLI: openai/codex codex-rs/hooks/schema/generated/*.command.input.schema.json
  (session_id, turn_id, transcript_path nullable, cwd, hook_event_name, model,
  permission_mode; tool_name, tool_input, tool_response, tool_use_id). The schema leaves
  tool_response open: Codex 0.169 sends a shell call's output as a string, with no exit code
  (seen with the real CLI in tests/test_codex.py).
- Gemini CLI: google-gemini/gemini-cli docs/hooks/reference.md (BeforeTool/AfterTool with
  tool_response {llmContent, returnDisplay, error}; AfterAgent with stop_hook_active); a shell
  failure as 0.61 sends it, `Exit Code: 1` inside llmContent (seen in tests/test_gemini.py).
- Cursor: https://cursor.com/docs/agent/hooks, as summarised by the Cupcake harness reference
  (conversation_id, generation_id, workspace_roots; command, cwd, output, duration; stop's
  status and loop_count).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from tests.support.helpers import FakeForge, eventually
from tests.support.payloads import FORBIDDEN, KUBECTL_RETRIES
from tests.support.sessions import HookRun, Team, run_hook, running_team
from tether import client as api
from tether.cli.demo import _expired_jwt
from tether.contracts import ShellCheck, TaskSpec, TaskState

RUNTIMES = ("claude-code", "codex", "gemini", "cursor")


@dataclass
class Speaks:
    """How one runtime's hooks say things, and how its answers read."""

    start: Callable[[str], tuple[str, dict[str, Any]]]
    pre_bash: Callable[[str, str], tuple[str, dict[str, Any]]]
    failed_bash: Callable[[str, str, int], tuple[str, dict[str, Any]]]
    stop: Callable[[str], tuple[str, dict[str, Any]]]
    # The reason a pre-tool answer denies with; the reason a stop is refused with; the context.
    denied: Callable[[HookRun], str | None]
    stop_refused: Callable[[HookRun], str | None]
    context: Callable[[HookRun], str | None]


def _specific(run: HookRun, key: str) -> Any:
    out = (run.answer or {}).get("hookSpecificOutput") or {}
    return out.get(key)


def _claude_denied(run: HookRun) -> str | None:
    if _specific(run, "permissionDecision") == "deny":
        return str(_specific(run, "permissionDecisionReason"))
    return None


CLAUDE = Speaks(
    start=lambda s: ("SessionStart", {"session_id": s, "source": "startup"}),
    pre_bash=lambda s, c: (
        "PreToolUse",
        {"session_id": s, "tool_name": "Bash", "tool_input": {"command": c}},
    ),
    failed_bash=lambda s, c, n: (
        "PostToolUseFailure",
        {
            "session_id": s,
            "tool_name": "Bash",
            "tool_input": {"command": c},
            "tool_use_id": f"toolu_{n}",
            "error": f"Exit code 1\n{FORBIDDEN}",
        },
    ),
    stop=lambda s: ("Stop", {"session_id": s, "stop_hook_active": False}),
    denied=_claude_denied,
    stop_refused=lambda r: r.err.strip() if r.code == 2 else None,
    context=lambda r: _specific(r, "additionalContext"),
)


def _codex(event: str, session: str, **more: Any) -> tuple[str, dict[str, Any]]:
    return event, {
        "session_id": session,
        "turn_id": "turn-1",
        "transcript_path": None,
        "cwd": "/srv/app",
        "model": "gpt-5-codex",
        "permission_mode": "bypassPermissions",
        **more,
    }


CODEX = Speaks(
    start=lambda s: _codex("SessionStart", s, source="startup"),
    pre_bash=lambda s, c: _codex(
        "PreToolUse", s, tool_name="Bash", tool_input={"command": c}, tool_use_id="call_0"
    ),
    failed_bash=lambda s, c, n: _codex(
        "PostToolUse",
        s,
        tool_name="Bash",
        tool_input={"command": c},
        tool_use_id=f"call_{n}",
        tool_response=f"{FORBIDDEN}\n",
    ),
    stop=lambda s: _codex("Stop", s, stop_hook_active=False, last_assistant_message="Done."),
    # A deny is JSON *and* exit 2 with the reason on stderr (see tether/runtimes/codex.py).
    denied=lambda r: r.err.strip() if r.code == 2 and _claude_denied(r) else None,
    stop_refused=lambda r: r.err.strip() if r.code == 2 else None,
    context=lambda r: _specific(r, "additionalContext"),
)


def _gemini(event: str, session: str, **more: Any) -> tuple[str, dict[str, Any]]:
    return event, {
        "session_id": session,
        "transcript_path": "/tmp/gemini-session.json",
        "cwd": "/srv/app",
        "timestamp": "2026-12-05T12:00:00Z",
        **more,
    }


def _decision(run: HookRun) -> str | None:
    answer = run.answer or {}
    return str(answer.get("reason")) if answer.get("decision") == "deny" else None


GEMINI = Speaks(
    start=lambda s: _gemini("SessionStart", s, source="startup"),
    pre_bash=lambda s, c: _gemini(
        "BeforeTool", s, tool_name="run_shell_command", tool_input={"command": c}
    ),
    failed_bash=lambda s, c, n: _gemini(
        "AfterTool",
        s,
        tool_name="run_shell_command",
        tool_input={"command": c},
        # What Gemini CLI 0.61 sends for a failed shell command (seen in tests/test_gemini.py).
        tool_response={
            "llmContent": f"<untrusted_context>\nOutput: {FORBIDDEN}\nExit Code: 1\n"
            "Process Group PGID: 4242\n</untrusted_context>",
            "returnDisplay": FORBIDDEN,
        },
    ),
    stop=lambda s: _gemini(
        "AfterAgent", s, prompt="Write the post", prompt_response="Done.", stop_hook_active=False
    ),
    denied=_decision,
    stop_refused=_decision,
    context=lambda r: _specific(r, "additionalContext"),
)


def _cursor(event: str, session: str, **more: Any) -> tuple[str, dict[str, Any]]:
    return event, {
        "conversation_id": session,
        "generation_id": "gen-1",
        "workspace_roots": ["/srv/app"],
        **more,
    }


def _permission(run: HookRun) -> str | None:
    answer = run.answer or {}
    return str(answer.get("agent_message")) if answer.get("permission") == "deny" else None


CURSOR = Speaks(
    start=lambda s: _cursor("sessionStart", s),
    pre_bash=lambda s, c: _cursor("beforeShellExecution", s, command=c, cwd="/srv/app"),
    failed_bash=lambda s, c, n: _cursor(
        "afterShellExecution", s, command=c, cwd="/srv/app", output=FORBIDDEN, duration=140
    ),
    stop=lambda s: _cursor("stop", s, status="completed", loop_count=0),
    denied=_permission,
    stop_refused=lambda r: (r.answer or {}).get("followup_message"),
    context=lambda r: (r.answer or {}).get("additional_context"),
)

SPEAKS = {"claude-code": CLAUDE, "codex": CODEX, "gemini": GEMINI, "cursor": CURSOR}


@dataclass
class Verdict:
    briefed: bool
    stopped_at: int | None
    # The failure that stopped it was answered with the reason, as context (not in Cursor: its
    # after-hooks are fire-and-forget; its agent reads the reason when the next call is denied).
    told: bool
    loop_denial: str
    task_state: str
    blocked_denial: str
    stop_refusal: str


async def replay(client: Client, team: Team, runtime: str) -> Verdict:
    speaks = SPEAKS[runtime]
    tag = runtime.replace("-", "")
    loop, scanner, writer = (f"{role}-{tag}-{team.agent('coder')[-8:]}" for role in "lsw")

    async def hook(agent: str, said: tuple[str, dict[str, Any]]) -> HookRun:
        return await run_hook(said[0], agent, said[1], team, "--fail-closed", runtime=runtime)

    # 6. The loop: five identical kubectl failures, then the next call.
    task = f"ingress-{tag}-{team.agent('coder')[-8:]}"
    spec = TaskSpec(id=task, title="Roll out ingress", checks=[ShellCheck(command="true")])
    await api.create_task(client, team.task_queue, spec)
    started = await hook(loop, speaks.start(f"{tag}-loop"))
    await api.claim_task(client, task, loop)

    async def holds() -> bool:
        view = await api.session_view(client, loop)
        return view is not None and view.task_id == task

    await eventually(holds, f"{runtime}: the session to hear of the claim")
    stopped_at, told = None, False
    for n, command in enumerate(KUBECTL_RETRIES, start=1):
        answer = await hook(loop, speaks.failed_bash(f"{tag}-loop", command, n))
        view = await api.session_view(client, loop)
        if stopped_at is None and view is not None and view.governor.hold is not None:
            stopped_at = n
            told = "stopped by Tether" in str(speaks.context(answer))
    denied = await hook(loop, speaks.pre_bash(f"{tag}-loop", KUBECTL_RETRIES[0]))

    async def blocked() -> str | None:
        record = await team.store.get_task(task)
        state = record.task.state if record else None
        return state if state == TaskState.BLOCKED else None

    state = await eventually(blocked, f"{runtime}: the task to be blocked")

    # 4. The expired token: the session is blocked, every tool call denied.
    await hook(scanner, speaks.start(f"{tag}-scan"))
    scan = await hook(scanner, speaks.pre_bash(f"{tag}-scan", "trivy fs ."))

    # 5. Pseudo-work: stopping without the deliverable is refused, once.
    await hook(writer, speaks.start(f"{tag}-write"))
    stop = await hook(writer, speaks.stop(f"{tag}-write"))
    return Verdict(
        briefed=bool(speaks.context(started)) and "Tether" in str(speaks.context(started)),
        stopped_at=stopped_at,
        told=told,
        loop_denial=(speaks.denied(denied) or "NOT DENIED").split(" (")[0],
        task_state=str(state),
        blocked_denial=(speaks.denied(scan) or "NOT DENIED").split(" expired")[0],
        stop_refusal=(speaks.stop_refused(stop) or "NOT REFUSED").split(":")[0],
    )


async def test_the_incidents_through_every_runtimes_hooks_end_with_the_same_verdicts(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    token = tmp_path / "scanner.jwt"
    token.write_text(_expired_jwt() + "\n")
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        suffix = team.agent("coder")[-8:]
        for runtime in RUNTIMES:
            tag = runtime.replace("-", "")
            team.config.agents += [
                type(team.config.agents[0]).model_validate(a)
                for a in (
                    {"name": f"l-{tag}-{suffix}", "repositories": ["app"]},
                    {"name": f"s-{tag}-{suffix}", "credentials": ["scanner"]},
                    {"name": f"w-{tag}-{suffix}", "repositories": ["app"]},
                )
            ]
        team.config.credentials["scanner"] = type(team.config.credentials["github"]).model_validate(
            {"kind": "jwt", "file": str(token)}
        )
        verdicts = await asyncio.gather(*(replay(client, team, r) for r in RUNTIMES))
    table = dict(zip(RUNTIMES, verdicts, strict=True))
    expected = Verdict(
        briefed=True,
        stopped_at=5,
        told=True,
        loop_denial="stopped by Tether: kubectl set failed 5 times the same way",
        task_state="blocked",
        blocked_denial="blocked: credential scanner",
        stop_refusal="No deliverable yet",
    )
    rows = "\n".join(f"{r}: {v}" for r, v in table.items())
    cursor = Verdict(**{**expected.__dict__, "told": False})
    assert all(v == (cursor if r == "cursor" else expected) for r, v in table.items()), rows


async def test_hooks_install_writes_each_runtimes_own_file_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    import json
    import os
    import sys

    from tests.support.cli import tether
    from tests.support.helpers import clean_environment

    env = clean_environment(TETHER_HOME=str(tmp_path / "home"))
    project = tmp_path / "app"
    (project / ".gemini").mkdir(parents=True)
    # Someone's own Gemini hook and setting stay.
    theirs = {"type": "command", "command": "./lint.sh", "name": "lint"}
    (project / ".gemini" / "settings.json").write_text(
        json.dumps(
            {"theme": "dark", "hooks": {"BeforeTool": [{"matcher": "x", "hooks": [theirs]}]}}
        )
    )
    files = {
        "codex": ".codex/hooks.json",
        "gemini": ".gemini/settings.json",
        "cursor": ".cursor/hooks.json",
    }
    for runtime in files:
        for _ in range(2):  # again: the same file, not two entries
            done = await tether(
                env, "hooks", "install", "--runtime", runtime, "--agent", "ops",
                "--project", str(project), "--gateway", "http://127.0.0.1:9",
            )  # fmt: skip
            assert done.code == 0, done.err
            assert f"wrote Tether's {runtime} hooks for ops" in done.out
    launcher = {r: project / Path(n).parent / "hooks" / "tether" for r, n in files.items()}
    codex = json.loads((project / files["codex"]).read_text())["hooks"]
    assert sorted(codex) == sorted(
        ["SessionStart", "PreToolUse", "PostToolUse", "PostCompact", "Stop"]
    )
    assert [len(g["hooks"]) for g in codex["PreToolUse"]] == [1]
    assert codex["PreToolUse"][0]["hooks"][0]["command"].endswith("tether PreToolUse")
    gemini = json.loads((project / files["gemini"]).read_text())
    assert gemini["theme"] == "dark"
    before = gemini["hooks"]["BeforeTool"]
    assert before[0] == {"matcher": "x", "hooks": [theirs]} and len(before) == 2
    assert before[1]["hooks"][0]["timeout"] == 15_000  # milliseconds
    cursor = json.loads((project / files["cursor"]).read_text())
    assert cursor["version"] == 1 and len(cursor["hooks"]["beforeShellExecution"]) == 1
    for runtime, path in launcher.items():
        assert os.access(path, os.X_OK)
        text = path.read_text()
        assert f"-m tether.hook {runtime} " in text and "--agent ops" in text
        assert sys.executable in text
