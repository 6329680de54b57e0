"""The Claude Code hook adapter on its own: unreachable Tether, bad input, installing the hooks,
and the names it shares with the rest of Tether without importing it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.support.cli import tether
from tests.support.helpers import clean_environment
from tests.support.sessions import run_hook
from tether.hook import claude_code as hooks
from tether.ops.stack import free_port

PRE_TOOL = {"session_id": "cc-1", "tool_name": "Bash", "tool_input": {"command": "ls"}}


async def test_unreachable_tether_fails_closed_or_open_and_says_why() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    closed = await run_hook("PreToolUse", "coder", PRE_TOOL, dead, "--fail-closed")
    assert closed.code == 0 and closed.answer is not None
    out = closed.answer["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny"
    reason = out["permissionDecisionReason"]
    assert reason.startswith(f"Tether is unreachable: its gateway at {dead} did not answer")
    assert "\n" not in reason

    opened = await run_hook("PreToolUse", "coder", PRE_TOOL, dead)
    assert opened.answer is not None and "permissionDecision" not in str(opened.answer)
    assert "tool calls are not governed" in opened.answer["systemMessage"]

    start = await run_hook("SessionStart", "coder", {"session_id": "x"}, dead, "--fail-closed")
    assert start.answer is not None
    context = start.answer["hookSpecificOutput"]["additionalContext"]
    assert "No startup brief. Tool calls will be denied until it is back." in context

    stop = await run_hook("Stop", "coder", {"session_id": "x"}, dead)
    assert stop.answer is None and stop.err.startswith("tether: Tether is unreachable")


async def test_bad_hook_input_is_denied_with_the_reason(tmp_path: Path) -> None:
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tether",
        "hook",
        "claude-code",
        "PreToolUse",
        "--agent",
        "coder",
        "--fail-closed",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate(b"{not json")
    answer = json.loads(out)
    assert answer["hookSpecificOutput"]["permissionDecision"] == "deny"
    assert "not valid JSON" in answer["hookSpecificOutput"]["permissionDecisionReason"]


@pytest.mark.parametrize(
    ("stdin", "why"),
    [
        (b"[" * 100_000, "JSON nested too deeply"),
        (b'{"session_id": 42, "tool_name": "Bash"}', "session_id must be a string"),
        (b'{"tool_name": "Bash", "tool_input": "rm -rf /"}', "tool_input must be a JSON object"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[1, 2]", "not a JSON object but list"),
        (b'{"a": "' + b"x" * (17 * 1024 * 1024) + b'"}', "more than 16 MB on stdin"),
    ],
    ids=["deep", "number-id", "string-input", "not-utf8", "array", "huge"],
)
async def test_bad_hook_input_is_answered_as_the_mode_says_never_with_a_traceback(
    stdin: bytes, why: str
) -> None:
    import asyncio

    async def hook(event: str, *flags: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tether.hook",
            "claude-code",
            event,
            "--agent",
            "coder",
            "--gateway",
            f"http://127.0.0.1:{free_port()}",
            *flags,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await hook("PreToolUse", "--fail-closed")
    assert code == 0 and "Traceback" not in err
    denied = json.loads(out)["hookSpecificOutput"]
    assert denied["permissionDecision"] == "deny"
    assert denied["permissionDecisionReason"].startswith(f"Tether refused the hook input: {why}")
    code, out, err = await hook("PreToolUse")
    assert code == 0 and "not governed" in json.loads(out)["systemMessage"]
    code, out, err = await hook("PostToolUse", "--fail-closed")
    assert code == 0 and out == "" and err.startswith("tether: Tether refused the hook input")
    assert "Traceback" not in err


def test_the_hook_path_does_not_import_temporal() -> None:
    import subprocess

    code = (
        "import sys, tether.entry, tether.hook.claude_code; "
        "print(sorted(m for m in sys.modules if m.startswith(('temporalio', 'pydantic', 'httpx'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_hooks_install_merges_with_existing_settings(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    project = tmp_path / "proj"
    settings = project / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    mine = {"type": "command", "command": "./lint.sh"}
    settings.write_text(
        json.dumps(
            {
                "permissions": {"allow": ["Bash(git *)"]},
                "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [mine]}]},
            }
        )
    )
    for _ in range(2):  # installing again changes nothing
        run = await tether(
            cli_env, "hooks", "install", "--agent", "coder", "--project", str(project)
        )
        assert run.code == 0, run.err
        assert (
            "(fail closed; HTTP hooks (SessionStart, Stop and PreToolUse through the `tether hook`"
            in run.out
        )
    data = json.loads(settings.read_text())
    assert data["permissions"] == {"allow": ["Bash(git *)"]}
    pre = data["hooks"]["PreToolUse"]
    assert pre[0] == {"matcher": "Bash", "hooks": [mine]}
    assert len(pre) == 2 and pre[1]["matcher"] == "*"
    # The settings name no local path (Claude Code shows the command to the model when a hook
    # blocks); the launcher next to them holds this machine's command line.
    assert pre[1]["hooks"][0]["command"] == '"$CLAUDE_PROJECT_DIR"/.claude/hooks/tether PreToolUse'
    launcher = project / ".claude" / "hooks" / "tether"
    assert launcher.stat().st_mode & 0o111
    assert (
        launcher.read_text()
        .splitlines()[-1]
        .endswith(
            ' -S -m tether.hook claude-code "$1" --agent coder --fail-closed '
            "--gateway http://127.0.0.1:8787"
        )
    )
    # Every other event is posted by Claude Code itself to the gateway, the token taken from
    # the agent's environment: no token, no Temporal or database address in the repository.
    start = data["hooks"]["SessionStart"][0]["hooks"][0]
    assert start["type"] == "command"  # Claude Code runs only commands at SessionStart
    post = data["hooks"]["PostToolUse"][0]["hooks"][0]
    assert post["type"] == "http"
    assert post["url"] == "http://127.0.0.1:8787/hooks/claude-code/PostToolUse?agent=coder"
    assert post["headers"]["Authorization"] == "Bearer $TETHER_AGENT_TOKEN"
    assert "TETHER_AGENT_TOKEN" in post["allowedEnvVars"]
    text = settings.read_text() + launcher.read_text()
    assert "tether_agent_" not in text and "7233" not in text and "postgres" not in text
    assert set(data["hooks"]) == {
        "SessionStart",
        "PreToolUse",
        "PostToolUse",
        "PostToolUseFailure",
        "PostCompact",
        "Stop",
        "SessionEnd",
    }
    assert data["hooks"]["PostToolUseFailure"][0]["matcher"] == "*"
    assert data["hooks"]["SessionStart"][0]["matcher"] == "startup|resume|clear|compact"
    assert all(len(groups) == 1 for e, groups in data["hooks"].items() if e != "PreToolUse")

    # The fallback: every event through the command, which forwards to the same gateway.
    run = await tether(
        cli_env,
        "hooks",
        "install",
        "--agent",
        "coder",
        "--project",
        str(project),
        "--transport",
        "command",
    )
    assert run.code == 0, run.err
    data = json.loads(settings.read_text())
    handlers = [g["hooks"][-1] for groups in data["hooks"].values() for g in groups[-1:]]
    assert {h["type"] for h in handlers} == {"command"} and len(handlers) == 7

    settings.write_text("{broken")
    run = await tether(cli_env, "hooks", "install", "--agent", "coder", "--project", str(project))
    assert run.code == 2 and "is not valid JSON" in run.err and "move it away" in run.err
    assert settings.read_text() == "{broken"


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return clean_environment(TETHER_HOME=str(tmp_path / "home"))


def test_the_hook_finds_a_running_tether_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TETHER_GATEWAY_URL", raising=False)
    monkeypatch.setenv("TETHER_HOME", str(tmp_path))
    assert hooks.locate_gateway(None) == hooks.DEFAULT_GATEWAY_URL
    (tmp_path / "stack.json").write_text(json.dumps({"gateway_url": "http://127.0.0.1:9999/"}))
    assert hooks.locate_gateway(None) == "http://127.0.0.1:9999"
    monkeypatch.setenv("TETHER_GATEWAY_URL", "http://10.0.0.5:8787")
    assert hooks.locate_gateway(None) == "http://10.0.0.5:8787"
    assert hooks.locate_gateway("http://flag:1") == "http://flag:1"


async def test_an_invalid_agent_name_is_refused_before_any_workflow_starts(
    client: Client,
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    denied = await run_hook("PreToolUse", "Coder Bot", PRE_TOOL, nowhere, "--fail-closed")
    assert denied.answer is not None
    reason = denied.answer["hookSpecificOutput"]["permissionDecisionReason"]
    assert reason.startswith("Tether refused: --agent 'Coder Bot' is not a valid agent name")
    start = await run_hook("SessionStart", "Coder Bot", {"session_id": "x"}, nowhere)
    assert start.answer is not None and "not a valid agent name" in str(start.answer)
    assert [wf.id async for wf in client.list_workflows("WorkflowId = 'session-Coder Bot'")] == []
