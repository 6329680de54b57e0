"""The real Claude Code CLI, governed end to end.

Each test runs the pinned `claude` (tests/runtimes/claude-code) headless against the scripted
Messages API (tests/support/model_api.py), in a real git repository, with the hooks `tether
hooks install` writes, against the real Temporal server, worker and PostgreSQL. What the tests
assert is what the agent and the founder would see: what the model was shown, which tool calls
ran, what state the task and the session are in, what the inbox says.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from temporalio.client import Client

from tests.support.claude_code import ClaudeCode, ensure_claude_code
from tests.support.helpers import FakeForge, eventually
from tests.support.model_api import ModelApi, Turn, Usage
from tests.support.payloads import (
    FIXTURES,
    FORBIDDEN,
    KUBECTL_RETRIES,
    claude_code_payload,
    sanitized,
)
from tests.support.sessions import REJECTED_TOKEN, TOKEN_ENV, VALID_TOKEN, Team, running_team
from tether import client as api
from tether.config import DEFAULT_PRICES
from tether.contracts import SessionState, SessionView, ShellCheck, TaskSpec, TaskState, TokenUsage


@pytest.fixture(scope="session", autouse=True)
def claude_binary() -> Path:
    return ensure_claude_code()


@dataclass
class Governed:
    team: Team
    claude: ClaudeCode
    model: ModelApi
    client: Client


@asynccontextmanager
async def governed(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    turns: list[Turn],
    role: str = "devops",
    extra: dict[str, Any] | None = None,
    transport: Literal["http", "command"] = "http",
) -> AsyncIterator[Governed]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f"#!/bin/sh\necho '{FORBIDDEN}' >&2\nexit 1\n")
    kubectl.chmod(0o755)
    async with running_team(client, fresh_db, tmp_path, forge, extra) as team:
        (team.repo / "infra").mkdir()
        with ModelApi(turns) as model:
            claude = ClaudeCode(
                agent=team.agent(role),
                project=team.repo,
                home=tmp_path / "claude-home",
                model=model,
                gateway=team.gateway.url,
                token=await team.gateway.token(team.agent(role)),
                tether_home=tmp_path / "tether-home",
                transport=transport,
                env={
                    "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
                    # The agent's own git identity, as on its machine.
                    "GIT_AUTHOR_NAME": "Agent",
                    "GIT_AUTHOR_EMAIL": "agent@example.invalid",
                    "GIT_COMMITTER_NAME": "Agent",
                    "GIT_COMMITTER_EMAIL": "agent@example.invalid",
                },
            )
            claude.home.mkdir()
            claude.install_hooks()
            yield Governed(team, claude, model, client)


Govern = Callable[..., AbstractAsyncContextManager[Governed]]


@pytest.fixture
def govern(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
) -> Govern:
    """`govern(turns, role=..., folder=..., transport=...)`: an agent's real Claude Code on a
    running team, its hooks posting to the team's gateway (HTTP hooks, or the command)."""

    def start(
        turns: list[Turn],
        role: str = "devops",
        folder: Path | None = None,
        transport: Literal["http", "command"] = "http",
    ) -> AbstractAsyncContextManager[Governed]:
        return governed(
            client, fresh_db, folder or tmp_path, forge, turns, role=role, transport=transport
        )

    return start


def _task(task_id: str) -> TaskSpec:
    return TaskSpec(id=task_id, title="Roll out api 1.4.3", checks=[ShellCheck(command="true")])


@pytest.mark.parametrize(
    ("claimed", "transport"),
    [
        ("before the session", "http"),
        ("inside the session", "http"),
        # The command fallback for every event, with the claim made through the gateway too.
        ("inside the session", "command"),
    ],
)
async def test_a_kubectl_loop_is_stopped_at_the_fifth_attempt_and_blocks_the_task(
    govern: Govern,
    client: Client,
    valid_token: None,
    task_id: str,
    claimed: str,
    transport: Literal["http", "command"],
) -> None:
    claim = f"{sys.executable} -m tether task claim {task_id} --agent {{agent}}"
    retries = [*KUBECTL_RETRIES, "kubectl set image deploy/api api=registry/api:1.4.4 -n prod"]
    turns = [Turn.bash(command, Usage(20_000 + 1000 * i, 40)) for i, command in enumerate(retries)]
    turns.append(Turn.say("I could not roll it out.", Usage(30_000, 20)))
    async with govern([], transport=transport) as g:
        agent = g.claude.agent
        await api.create_task(client, g.team.task_queue, _task(task_id))
        if claimed == "before the session":
            await api.claim_task(client, task_id, agent)
        else:
            turns.insert(0, Turn.bash(claim.format(agent=agent)))
        g.model._script = turns
        run = await g.claude.run("Roll out api 1.4.3 to prod.")
        assert run.code == 0, run.stderr

        results = run.tool_results()
        kubectl = results[1:] if claimed == "inside the session" else results
        assert len(kubectl) == 6, results
        # The first five ran (the forbidden error came back); the sixth never ran.
        assert all("(Forbidden)" in str(r["content"]) for r in kubectl[:5]), kubectl
        assert kubectl[5]["is_error"]
        assert "stopped by Tether: kubectl set failed 5 times the same way" in str(
            kubectl[5]["content"]
        )
        shown = "\n".join(r.shown() for r in g.model.main_requests())
        assert "hook blocking error" not in shown and sys.executable not in shown

        record = await eventually(
            lambda: _in_state(g, task_id, TaskState.BLOCKED), "the task to be blocked"
        )
        assert record.events[-1].kind == "loop_blocked"
        items = [i for i in await g.team.store.inbox() if i.kind == "loop_blocked"]
        assert [i.action for i in items] == [f"tether task unblock {task_id}"]
        # The task is the session's task either way: its spend is the task's.
        view = await _ended_session(g, run.session_id)
        assert view.task_id == task_id
        spent = view.governor.task_costs.get(task_id, 0.0)
        if claimed == "before the session":
            assert spent == pytest.approx(view.governor.cost_usd) and spent > 0
        else:
            # From the claim on (the claiming turn itself lands on either side of it).
            assert 0 < spent <= view.governor.cost_usd


async def _in_state(g: Governed, task_id: str, state: TaskState) -> Any:
    record = await g.team.store.get_task(task_id)
    return record if record and record.task.state == state else None


def _said(g: Governed, text: str) -> list[int]:
    """The scripted turns whose request showed the model `text`, in order."""
    return [r.turn or 0 for r in g.model.main_requests() if text in r.shown()]


@pytest.mark.parametrize("auto_compact", ["off", "on"])
async def test_context_stages_and_the_handoff_come_within_the_window_claude_code_allows(
    govern: Govern,
    auto_compact: str,
) -> None:
    # Claude Code keeps 23,000 tokens of a 200,000 window with auto-compact off (it refuses the
    # next request past 177,000) and compacts 33,000 short of it when on: 95% of 200,000 would
    # never come. The stages are judged against what is left.
    usable = 177_000 if auto_compact == "off" else 167_000
    climb = [0.50, 0.71, 0.86, 0.96, 0.97]
    turns = [Turn.bash(f"echo step {i}", Usage(int(p * usable), 40)) for i, p in enumerate(climb)]
    turns.append(Turn.say("Stopping here.", Usage(int(0.97 * usable), 10)))
    env = {"DISABLE_AUTO_COMPACT": "1"} if auto_compact == "off" else {}
    async with govern(turns) as g:
        run = await g.claude.run("Work through the steps.", **env)
        assert run.code == 0, run.stderr
        assert "Prompt is too long" not in str(run.result.get("result"))
        # Each directive reaches the model once, with the request after the crossing.
        assert _said(g, "Compact now") == [2, 3, 4, 5]
        assert _said(g, "Trim now")[:1] == [3]
        assert _said(g, "Tether archived this session's state")[:1] == [4]
        assert f"of {usable:,} usable tokens" in g.model.main_requests()[2].shown()
        results = run.tool_results()
        assert [r["is_error"] for r in results] == [False, False, False, False, True]
        # After the handoff the next tool call is denied with the handoff's reason, not with
        # "no open session"; SessionEnd then has nothing left to end and says nothing.
        assert "Tether handed this session off (handoff: context 96% full)" in str(
            results[4]["content"]
        )
        assert "no open session" not in str(results[4]["content"])
        assert "session not ended" not in run.stderr
        handoffs = await g.team.store.pool.fetch(
            "SELECT * FROM handoffs WHERE agent = $1", g.claude.agent
        )
        assert len(handoffs) == 1


async def test_claude_code_refuses_past_its_reserve_with_auto_compact_off(
    govern: Govern,
    tmp_path: Path,
) -> None:
    """The reserve Tether assumes is Claude Code's own: the pinned CLI still takes a request at
    176,000 tokens and refuses one at 177,000 (window 200,000). A version that changes this
    fails here, not in a founder's team."""
    from tether.hook.claude_code import RESERVE_AUTO_COMPACT_OFF

    limit = 200_000 - RESERVE_AUTO_COMPACT_OFF
    for used, refused in ((limit - 1000, False), (limit, True)):
        turns = [Turn.bash("echo one", Usage(used, 40)), Turn.say("done", Usage(used, 10))]
        async with govern(turns, folder=tmp_path / str(used)) as g:
            run = await g.claude.run("One step.", DISABLE_AUTO_COMPACT="1")
            assert ("Prompt is too long" in str(run.result.get("result"))) is refused, used


def _priced(*usages: Usage) -> float:
    """What Tether's default prices make of these usages of claude-sonnet-4-5."""
    price = DEFAULT_PRICES["claude-sonnet"]
    return sum(
        price.cost(
            TokenUsage(
                input=u.input_tokens,
                output=u.output_tokens,
                cache_read=u.cache_read_input_tokens,
                cache_write=u.cache_creation_input_tokens,
            )
        )
        for u in usages
    )


async def _ended_session(g: Governed, runtime_session: str) -> SessionView:
    async def ended() -> SessionView | None:
        view = await api.session_view(g.client, g.claude.agent)
        ok = view and view.external_id == runtime_session and view.state == SessionState.ENDED
        return view if ok else None

    found: SessionView = await eventually(ended, "the session to end")
    return found


async def test_resume_and_compact_count_once_and_spend_is_exact(
    govern: Govern,
) -> None:
    usage = [
        Usage(30_000, 400, 12_000, 3_000),
        Usage(31_000, 120, 14_000, 500),
        Usage(35_000, 300, 15_000, 2_500),
        Usage(36_000, 90, 16_000, 700),
        Usage(38_000, 2_000, 0, 0),
    ]
    commit = "echo '{0}' >> notes.md && git add notes.md && git commit -q -m '{0}'"
    turns = [
        Turn.bash(commit.format("part one"), usage[0]),
        Turn.say("Part one is committed.", usage[1]),
        Turn.bash(commit.format("part two"), usage[2]),
        Turn.say("Part two is committed.", usage[3]),
        Turn.say("<analysis>two parts</analysis><summary>Parts one and two.</summary>", usage[4]),
    ]
    async with govern(turns) as g:
        first = await g.claude.run("Do part one.")
        assert first.code == 0, first.stderr
        one = await _ended_session(g, first.session_id)

        resumed = await g.claude.run("Now part two.", "--resume", first.session_id)
        assert resumed.code == 0 and resumed.session_id == first.session_id, resumed.stderr
        two = await _ended_session(g, first.session_id)
        assert two.started_at > one.started_at

        compacted = await g.claude.run("/compact", "--resume", first.session_id)
        assert compacted.code == 0, compacted.stderr
        three = await _ended_session(g, first.session_id)
        assert three.started_at > two.started_at

        # Each Tether session counts what its own runtime session spent, once: the resumed
        # one does not read the first one's transcript again.
        assert one.governor.cost_usd == pytest.approx(_priced(*usage[:2]))
        assert two.governor.cost_usd == pytest.approx(_priced(*usage[2:4]))
        assert three.governor.cost_usd == pytest.approx(_priced(usage[4]))
        # One /compact is one compaction (PostCompact), not two (SessionStart compact too).
        assert [s.governor.compactions for s in (one, two, three)] == [0, 0, 1]
        assert three.governor.compact_summary is not None
        starts = [p.get("source") for p in g.claude.payloads("SessionStart")]
        assert starts[:2] == ["startup", "resume"] and "compact" in starts


async def test_the_brief_reaches_the_model_and_a_revoked_token_denies_the_first_tool_call(
    govern: Govern,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
    task_id: str,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, VALID_TOKEN)
    turns = [
        Turn.bash("git status --short"),
        Turn.say("Looked around; nothing to do yet."),
        Turn.say("Stopping: nothing to commit yet."),  # after the Stop check holds it once
        Turn.bash("gh pr list"),
        Turn.say("I am blocked on the token."),
    ]
    async with govern(turns, role="coder") as g:
        await api.create_task(client, g.team.task_queue, _task(task_id))
        first = await g.claude.run("Look at the repository.")
        assert first.code == 0, first.stderr
        opening = g.model.main_requests()[0].shown()
        assert f"Tether startup brief for {g.claude.agent}" in opening
        assert f"{task_id}" in opening  # the claimable task, from the brief
        assert [r["is_error"] for r in first.tool_results()] == [False]

        # The forge token is revoked; the next session starts blocked, and its first tool call
        # is denied before it runs, with the reason.
        monkeypatch.setenv(TOKEN_ENV, REJECTED_TOKEN)
        before = len(g.model.main_requests())
        second = await g.claude.run("Open a pull request.")
        assert second.code == 0, second.stderr
        (denied,) = second.tool_results()
        assert denied["is_error"]
        assert "credential github was rejected (HTTP 401" in str(denied["content"])
        turn = g.model.main_requests()[before].shown()
        assert "blocked: credential github was rejected" in turn
        view = await _ended_session(g, second.session_id)
        assert view.blocker is not None and not view.pseudo_work
        inbox = await eventually(g.team.store.inbox, "the blocker in the inbox")
        assert [i.action for i in inbox if i.kind == "credential_blocked"] == [
            f"fix credential github, then: tether session recheck {g.claude.agent}"
        ]


@pytest.mark.parametrize("transport", ["http", "command"])
async def test_a_session_without_a_commit_is_held_at_stop_once_and_flagged_at_its_end(
    govern: Govern,
    transport: Literal["http", "command"],
) -> None:
    turns = [
        Turn.say("All done: the feature is finished and tested."),
        Turn.say("Nothing is committed; I am stopping anyway."),
        Turn.bash("echo work >> notes.md && git add notes.md && git commit -q -m 'real work'"),
        Turn.say("Committed."),
    ]
    async with govern(turns, transport=transport) as g:
        claims = await g.claude.run("Finish the feature.")
        assert claims.code == 0, claims.stderr
        # Stop was blocked once, with the reason shown to the model once (not a second time as
        # a "blocking error" quoting the hook's command line); the second stop went through.
        held = g.model.main_requests()[1].shown()
        assert held.count("No deliverable yet: no commit on 'main' in app") == 1
        assert "blocking error" not in held and ".venv" not in held
        stops = [p["stop_hook_active"] for p in g.claude.payloads("Stop")]
        assert stops == [False, True]
        flagged = await _ended_session(g, claims.session_id)
        assert flagged.pseudo_work

        async def flagged_items() -> list[Any]:
            return [i for i in await g.team.store.inbox() if i.kind == "pseudo_work"]

        inbox = await eventually(flagged_items, "the pseudo-work item")
        assert len(inbox) == 1 and "ended without a deliverable" in inbox[0].title

        works = await g.claude.run("Do the work, for real this time.")
        assert works.code == 0, works.stderr
        done = await _ended_session(g, works.session_id)
        assert not done.pseudo_work
        assert [p["stop_hook_active"] for p in g.claude.payloads("Stop")] == [False, True, False]


async def test_the_payloads_claude_code_sends_are_the_recorded_fixtures(
    govern: Govern,
    tmp_path: Path,
) -> None:
    """Every event Tether installs, as the pinned CLI sends it, matches tests/fixtures (the
    payloads the hook tests build on). TETHER_RECORD_FIXTURES=1 writes them anew, e.g. after
    a version bump; review the diff."""
    turns = [
        Turn.bash("ls"),
        Turn.bash("kubectl get pods"),
        Turn.say("Done."),
        Turn.say("Stopping."),
        Turn.say("<summary>Listed files; kubectl is forbidden.</summary>"),
    ]
    async with govern(turns) as g:
        first = await g.claude.run("Look around.")
        await g.claude.run("/compact", "--resume", first.session_id)
        seen: dict[str, dict[str, Any]] = {}
        for payload in g.claude.payloads():
            event = payload["hook_event_name"]
            key = f"{event}-{payload['source']}" if event == "SessionStart" else event
            seen.setdefault(key, sanitized(payload, tmp_path, first.session_id))
    assert set(seen) == {
        "SessionStart-startup",
        "SessionStart-resume",
        "SessionStart-compact",
        "PreToolUse",
        "PostToolUse",
        "PostToolUseFailure",
        "PostCompact",
        "Stop",
        "SessionEnd",
    }
    if os.environ.get("TETHER_RECORD_FIXTURES"):
        for key, payload in seen.items():
            path = FIXTURES / f"{key}.json"
            path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    for key, payload in seen.items():
        recorded = claude_code_payload(key)
        assert _shape(payload) == _shape(recorded), key


def _shape(value: Any) -> Any:
    """Field names and value types, not values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


async def test_the_test_command_says_how_to_get_npm_when_it_is_missing(tmp_path: Path) -> None:
    """`./run test` on a machine without Node.js: one line saying what to install, exit 2."""
    import asyncio
    import shutil

    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "env", "dirname", "cat", "cut", "sha256sum", "id"):
        found = shutil.which(tool)
        assert found is not None, tool
        (tools / tool).symlink_to(found)
    (tools / "python3").symlink_to(sys.executable)
    root = Path(__file__).resolve().parents[1]
    proc = await asyncio.create_subprocess_exec(
        str(tools / "bash"),
        str(root / "run"),
        "test",
        "--collect-only",
        env={"PATH": str(tools), "HOME": str(tmp_path)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 2, (out, err)
    lines = err.decode().strip().splitlines()
    assert lines == [
        "run: the tests drive the real Claude Code CLI, installed with npm; install Node.js 20 "
        "or newer with npm (Debian/Ubuntu: apt-get install nodejs npm)"
    ]


def test_the_scripted_api_answers_plain_json_and_streams_and_logs_each_request() -> None:
    import httpx

    turns = [Turn.bash("ls", Usage(100, 7)), Turn.say("hello", Usage(120, 3))]
    tools = [{"name": "Bash", "input_schema": {"type": "object"}}]
    with ModelApi(turns) as model:
        plain = httpx.post(
            f"{model.url}/v1/messages",
            json={"model": "m", "tools": tools, "messages": [{"role": "user", "content": "hi"}]},
        ).json()
        assert plain["stop_reason"] == "tool_use"
        assert plain["content"][0] == {
            "type": "tool_use",
            "id": plain["content"][0]["id"],
            "name": "Bash",
            "input": {"command": "ls"},
        }
        assert plain["usage"]["input_tokens"] == 100
        body = {"model": "m", "tools": tools, "stream": True, "messages": []}
        with httpx.stream("POST", f"{model.url}/v1/messages", json=body) as streamed:
            events = [line[7:] for line in streamed.iter_lines() if line.startswith("event: ")]
        assert events[0] == "message_start" and events[-1] == "message_stop"
        assert "content_block_delta" in events and "message_delta" in events
        # A side request (no tools offered) is answered, logged, and not part of the script.
        side = httpx.post(f"{model.url}/v1/messages", json={"model": "m", "messages": []})
        assert side.json()["content"] == [{"type": "text", "text": "ok"}]
        assert [(r.main, r.turn) for r in model.requests] == [(True, 0), (True, 1), (False, None)]
