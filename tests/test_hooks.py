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
    closed = await run_hook("PreToolUse", "coder", PRE_TOOL, dead, "q", "--fail-closed")
    assert closed.code == 0 and closed.answer is not None
    out = closed.answer["hookSpecificOutput"]
    assert out["permissionDecision"] == "deny"
    reason = out["permissionDecisionReason"]
    assert reason.startswith("Tether is unreachable: Temporal's HTTP API at")
    assert "\n" not in reason

    opened = await run_hook("PreToolUse", "coder", PRE_TOOL, dead, "q")
    assert opened.answer is not None and "permissionDecision" not in str(opened.answer)
    assert "tool calls are not governed" in opened.answer["systemMessage"]

    start = await run_hook("SessionStart", "coder", {"session_id": "x"}, dead, "q", "--fail-closed")
    assert start.answer is not None
    context = start.answer["hookSpecificOutput"]["additionalContext"]
    assert "No startup brief. Tool calls will be denied until it is back." in context

    stop = await run_hook("Stop", "coder", {"session_id": "x"}, dead, "q")
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
            "--temporal-http",
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
        assert "(fail closed)" in run.out
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
        .endswith(' -S -m tether.hook claude-code "$1" --agent coder --fail-closed')
    )
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
    for name in ("TETHER_TEMPORAL_HTTP", "TEMPORAL_NAMESPACE", "TETHER_TASK_QUEUE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TETHER_HOME", str(tmp_path))
    assert hooks.locate(None) == (hooks.DEFAULT_TEMPORAL_HTTP, "default", "tether")
    (tmp_path / "stack.json").write_text(
        json.dumps({"temporal_http": "http://127.0.0.1:9999", "namespace": "ns", "task_queue": "q"})
    )
    assert hooks.locate(None) == ("http://127.0.0.1:9999", "ns", "q")
    monkeypatch.setenv("TETHER_TEMPORAL_HTTP", "http://10.0.0.5:7243")
    assert hooks.locate(None)[0] == "http://10.0.0.5:7243"
    assert hooks.locate("http://flag:1")[0] == "http://flag:1"


async def test_an_invalid_agent_name_is_refused_before_any_workflow_starts(
    temporal_http: str, client: Client
) -> None:
    denied = await run_hook(
        "PreToolUse", "Coder Bot", PRE_TOOL, temporal_http, "q", "--fail-closed"
    )
    assert denied.answer is not None
    reason = denied.answer["hookSpecificOutput"]["permissionDecisionReason"]
    assert reason.startswith("Tether refused: --agent 'Coder Bot' is not a valid agent name")
    start = await run_hook("SessionStart", "Coder Bot", {"session_id": "x"}, temporal_http, "q")
    assert start.answer is not None and "not a valid agent name" in str(start.answer)
    assert [wf.id async for wf in client.list_workflows("WorkflowId = 'session-Coder Bot'")] == []
