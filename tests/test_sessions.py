"""Agent sessions end to end: the startup brief from ground truth, the credential gate, the
artifact test, driven through the Python client and through Claude Code hook payloads."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.support import keys
from tests.support.cli import tether
from tests.support.gateway import running_gateway
from tests.support.helpers import (
    FakeForge,
    HttpService,
    clean_environment,
    commit_file,
    eventually,
    git,
    history_text,
)
from tests.support.sessions import (
    REJECTED_TOKEN,
    TOKEN_ENV,
    VALID_TOKEN,
    run_hook,
    running_team,
)
from tether import client as api
from tether.contracts import (
    Artifact,
    HttpCheck,
    SessionInput,
    SessionState,
    TaskSpec,
)
from workflows.session import AgentSessionWorkflow


def _task(
    task_id: str, title: str, assignee: str | None = None, path: str | None = None
) -> TaskSpec:
    artifact = Artifact(kind="commit", repository="app", path=path) if path else None
    check = HttpCheck(url="http://127.0.0.1:9/health")
    return TaskSpec(id=task_id, title=title, assignee=assignee, artifact=artifact, checks=[check])


async def test_brief_shows_work_in_flight_and_never_offers_it(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder, devops = team.agent("coder"), team.agent("devops")
        sfx = coder.rsplit("-", 1)[1]
        held, busy, mine, free = (f"{n}-{sfx}" for n in ("held", "busy", "mine", "free"))
        q = team.task_queue
        await api.create_task(client, q, _task(held, "Fix the checkout 500"))
        await api.claim_task(client, held, devops)
        await api.create_task(client, q, _task(busy, "Rate-limit login", path="api/login"))
        await api.create_task(client, q, _task(free, "Write the changelog"))
        await api.create_task(client, q, _task(mine, "Add retries", assignee=coder))
        commit_file(team.repo, "api/payments.py", "x = 1\n", "payments: first cut")
        forge.pulls["acme/app"] = [
            (11, "Login limits", f"{devops}/login", devops, ["api/login/limits.py"]),
            (12, f"Checkout fix for {held}", "sec/checkout", "sec-bot", ["api/checkout.py"]),
            (13, "Checkout refactor", f"{devops}/checkout", devops, ["api/checkout.py"]),
        ]

        view = await api.start_session(client, q, SessionInput(agent=coder))

        assert view.state == SessionState.ACTIVE
        brief = view.brief
        assert brief is not None
        # Its own pre-assigned task is offered first; work in flight elsewhere never is.
        assert brief.offered is not None and brief.offered.id == mine
        assert [t.id for t in brief.others_in_flight] == [held]
        assert busy in brief.withheld and "PR #11" in brief.withheld[busy]
        offered_ids = {brief.offered.id}
        assert not offered_ids & {held, busy}
        kinds = sorted(o.kind for o in brief.overlaps)
        assert kinds == ["pr_files", "pr_task"]
        text = brief.text
        assert f"Best open task for you: {mine}" in text
        assert f"{held} [claimed] (held by {devops})" in text
        assert "payments: first cut" in text
        assert "PR #12 (security" in text or "PR #12" in text
        # The founder hears about the overlaps.
        inbox = await team.store.inbox()
        assert sorted(i.kind for i in inbox) == ["overlap", "overlap"]
        assert any(held in i.title and "PR #12" in i.title for i in inbox)


async def test_rejected_token_blocks_the_session_its_tools_and_tells_the_founder(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, REJECTED_TOKEN)
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = team.agent("coder")
        start = await run_hook(
            "SessionStart", coder, {"session_id": "cc-1", "source": "startup"}, team
        )
        assert start.code == 0 and start.answer is not None
        context = start.answer["hookSpecificOutput"]["additionalContext"]
        assert context.startswith("blocked: credential github was rejected (HTTP 401")
        assert context.endswith("founder notified — do not work around it")

        tool = {"session_id": "cc-1", "tool_name": "Bash", "tool_input": {"command": "gh pr list"}}
        denied = await run_hook("PreToolUse", coder, tool, team, "--fail-closed")
        out = denied.answer["hookSpecificOutput"] if denied.answer else {}
        assert out["permissionDecision"] == "deny"
        assert "credential github was rejected" in out["permissionDecisionReason"]

        inbox = await team.store.inbox()
        assert [i.kind for i in inbox] == ["credential_blocked"]
        assert coder in inbox[0].title and "github" in inbox[0].title
        assert inbox[0].action == f"fix credential github, then: tether session recheck {coder}"

        # The founder rotates the token; a recheck unblocks and clears the inbox item.
        monkeypatch.setenv(TOKEN_ENV, VALID_TOKEN)
        view = await api.recheck_session(client, coder, "founder")
        assert view.state == SessionState.ACTIVE and view.blocker is None
        allowed = await run_hook("PreToolUse", coder, tool, team, "--fail-closed")
        assert allowed.answer is None and allowed.code == 0
        assert await team.store.inbox() == []


async def test_session_without_a_deliverable_is_pseudo_work_and_one_with_a_commit_is_not(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder, q, repo = team.agent("coder"), team.task_queue, team.repo
        git(repo, "checkout", "-q", "-b", "coder-work")
        commit_file(repo, "docs/old.md", "written before the session\n", "old work")
        git(repo, "checkout", "-q", "main")

        # Strategy documents and an empty commit: nothing delivered.
        await api.start_session(client, q, SessionInput(agent=coder))
        git(repo, "checkout", "-q", "coder-work")
        git(repo, "commit", "-q", "--allow-empty", "-m", "progress update")
        ended = await api.end_session(client, coder, "agent says done", "agent")
        assert ended.pseudo_work
        assert ended.artifact_result is not None and not ended.artifact_result.passed
        assert "none with changes" in ended.artifact_result.summary
        flagged = await team.store.inbox()
        assert [i.kind for i in flagged] == ["pseudo_work"]

        # A real commit on the agent's branch, back-dated to look old: it still counts, because
        # the test compares with the branch tips at session start, not with dates.
        await api.start_session(client, q, SessionInput(agent=coder))
        sha = commit_file(
            repo, "api/retry.py", "RETRIES = 3\n", "add retries", date="2001-01-01T00:00:00"
        )
        ended = await api.end_session(client, coder, "agent says done", "agent")
        assert not ended.pseudo_work
        assert ended.artifact_result is not None and ended.artifact_result.passed
        assert ended.artifact_result.commits == [sha]
        assert ended.artifact_result.files == ["api/retry.py"]

        counts = await team.store.pseudo_work_counts()
        assert counts[coder] == (1, 2)


async def test_declared_artifacts_file_url_and_path(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    http_service: object,
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder, q, repo = team.agent("coder"), team.task_queue, team.repo
        post = tmp_path / "out" / "launch-post.md"
        artifact = Artifact(kind="file", path=str(post))
        await api.start_session(client, q, SessionInput(agent=coder, artifact=artifact))
        for n in range(4):  # four strategy documents, no post
            (tmp_path / f"strategy-{n}.md").write_text("plan\n")
        ended = await api.end_session(client, coder, "done", "agent")
        assert ended.pseudo_work and "does not exist" in ended.artifact_result.summary  # type: ignore[union-attr]

        await api.start_session(client, q, SessionInput(agent=coder, artifact=artifact))
        post.parent.mkdir(parents=True)
        post.write_text("We launched.\n")
        ended = await api.end_session(client, coder, "done", "agent")
        assert not ended.pseudo_work

        # A commit that does not touch the declared path is not the deliverable.
        git(repo, "checkout", "-q", "-b", "coder-work")
        artifact = Artifact(kind="commit", repository="app", path="api/")
        await api.start_session(client, q, SessionInput(agent=coder, artifact=artifact))
        commit_file(repo, "README.md", "more words\n", "docs")
        ended = await api.end_session(client, coder, "done", "agent")
        assert ended.pseudo_work and "touching 'api/'" in ended.artifact_result.summary  # type: ignore[union-attr]


async def test_claude_code_hooks_drive_a_whole_session(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder, repo = team.agent("coder"), team.repo
        git(repo, "checkout", "-q", "-b", "coder-work")
        sid = {"session_id": "cc-42"}

        start = await run_hook("SessionStart", coder, {**sid, "source": "startup"}, team)
        assert start.answer is not None
        context = start.answer["hookSpecificOutput"]["additionalContext"]
        assert context.startswith(f"Tether startup brief for {coder}")
        # Readable in the Web UI. The SDK cannot carry a static summary across continue-as-new,
        # which the test server may already have suggested: read the first run's.
        handle = client.get_workflow_handle_for(AgentSessionWorkflow.run, f"session-{coder}")
        info = (await handle.describe()).raw_description.workflow_execution_info
        assert info.first_run_id
        first_run = client.get_workflow_handle(f"session-{coder}", run_id=info.first_run_id)
        summary = await (await first_run.describe()).static_summary()
        assert summary == f"Session of {coder} (claude-code)"

        tool = {**sid, "tool_name": "Edit", "tool_input": {"file_path": "api/x.py"}}
        assert (await run_hook("PreToolUse", coder, tool, team)).answer is None

        stop = await run_hook("Stop", coder, {**sid, "stop_hook_active": False}, team)
        # Exit 2, the reason on stderr: Claude Code blocks the stop and shows the reason once.
        assert stop.code == 2 and stop.answer is None
        assert stop.err.startswith("No deliverable yet: no commit on 'coder-work'")
        again = await run_hook("Stop", coder, {**sid, "stop_hook_active": True}, team)
        assert again.answer is None  # blocked once; never a loop

        commit_file(repo, "api/x.py", "x = 2\n", "fix x")
        stop = await run_hook("Stop", coder, {**sid, "stop_hook_active": False}, team)
        assert stop.answer is None

        # A resumed Claude Code session is the same Tether session.
        resumed = await run_hook("SessionStart", coder, {**sid, "source": "resume"}, team)
        assert resumed.answer is not None
        first = await api.session_view(client, coder)
        assert first is not None and first.external_id == "cc-42"

        end = await run_hook("SessionEnd", coder, {**sid, "reason": "prompt_input_exit"}, team)
        assert end.code == 0
        assert (await handle.result()).state == SessionState.ENDED  # the workflow completes
        view = await api.session_view(client, coder)
        assert view is not None and view.state == SessionState.ENDED and not view.pseudo_work
        assert view.end_reason == "claude-code SessionEnd (prompt_input_exit)"

        # A tool call of the ended runtime session is denied with the reason it ended.
        late = await run_hook("PreToolUse", coder, tool, team)
        assert late.answer is not None
        reason = late.answer["hookSpecificOutput"]["permissionDecisionReason"]
        assert reason == (
            "this session has ended (claude-code SessionEnd (prompt_input_exit)); start a new "
            "session"
        )
        # Another runtime session with no Tether session is not governed: denied when failing
        # closed.
        other = {**tool, "session_id": "cc-other"}
        stray = await run_hook("PreToolUse", coder, other, team, "--fail-closed")
        assert stray.answer is not None
        assert "no open session" in stray.answer["hookSpecificOutput"]["permissionDecisionReason"]


async def test_a_new_runtime_session_ends_the_abandoned_one_with_its_artifact_check(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = team.agent("coder")
        await run_hook("SessionStart", coder, {"session_id": "cc-old"}, team)
        # The old process died without SessionEnd; a new one starts.
        await run_hook("SessionStart", coder, {"session_id": "cc-new"}, team)
        wanted = [("cc-new", "active"), ("cc-old", "ended")]

        async def both_rows() -> list[dict[str, Any]] | None:
            # The read model is written behind the workflow (normally before the hook's
            # answer; not always on a loaded machine: seen once in CI).
            found = await team.store.list_sessions(agent=coder)
            shown = [(r["external_id"], r["state"]) for r in found]
            return found if shown == wanted else None

        rows = await eventually(both_rows, "both sessions' rows in PostgreSQL")
        old = rows[1]
        assert "superseded by claude-code session cc-new" in old["end_reason"]
        assert old["pseudo_work"] and old["artifact_result"]["passed"] is False
        # A late SessionEnd of the old process does not end the new session.
        await run_hook("SessionEnd", coder, {"session_id": "cc-old"}, team)
        view = await api.session_view(client, coder)
        assert view is not None and view.state == SessionState.ACTIVE
        assert view.external_id == "cc-new"
        # Another Claude Code session of the same agent is not governed while this one is open.
        other = {"session_id": "cc-other", "tool_name": "Bash", "tool_input": {}}
        denied = await run_hook("PreToolUse", coder, other, team, "--fail-closed")
        assert denied.answer is not None
        assert "already has an open session" in str(denied.answer)
        await api.end_session(client, coder, "test over", "founder")


async def test_unknown_agent_is_blocked_with_a_configuration_reason(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        view = await api.start_session(client, team.task_queue, SessionInput(agent="ghost-x1"))
        assert view.state == SessionState.BLOCKED
        assert "agent ghost-x1 is not in tether.toml" in view.notice
        await api.end_session(client, "ghost-x1", "test over", "founder")
        ended = await api.session_view(client, "ghost-x1")
        assert ended is not None and not ended.pseudo_work  # blocked sessions are not flagged


async def test_no_secret_value_reaches_any_history_or_table(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, REJECTED_TOKEN)
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = team.agent("coder")
        await run_hook("SessionStart", coder, {"session_id": "cc-s"}, team)
        monkeypatch.setenv(TOKEN_ENV, VALID_TOKEN)
        await api.recheck_session(client, coder, "founder")
        await run_hook("Stop", coder, {"session_id": "cc-s"}, team)
        await api.end_session(client, coder, "done", "agent")
        dumped = await team.store.pool.fetchval(
            """SELECT concat_ws(' ', (SELECT json_agg(s)::text FROM sessions s),
                                     (SELECT json_agg(i)::text FROM inbox i),
                                     (SELECT json_agg(c)::text FROM credential_status c))"""
        )
        assert VALID_TOKEN not in dumped and REJECTED_TOKEN not in dumped

    # Every workflow this test session has run so far, not only this test's.
    scanned = readable = 0
    async for wf in client.list_workflows():
        history = await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        text = history_text(history)
        assert VALID_TOKEN not in text and REJECTED_TOKEN not in text, wf.id
        scanned += 1
        # The scan can see payloads: every history has some, decoded after the first line.
        readable += bool(text.split("\n", 1)[1].strip())
    assert scanned >= 3 and readable == scanned


async def test_a_session_nobody_ends_is_ended_and_checked_at_its_deadline(
    time_skipping_env: WorkflowEnvironment,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
) -> None:
    env = time_skipping_env
    extra = {"sessions": {"max_hours": 2}}
    async with running_team(env.client, fresh_db, tmp_path, forge, extra) as team:
        coder = team.agent("coder")
        view = await api.start_session(env.client, team.task_queue, SessionInput(agent=coder))
        assert view.deadline is not None and view.started_at is not None
        assert view.deadline - view.started_at == timedelta(hours=2)
        await env.sleep(timedelta(hours=1))
        still = await api.session_view(env.client, coder)
        assert still is not None and still.state == SessionState.ACTIVE
        await env.sleep(timedelta(hours=1, minutes=5))
        handle = env.client.get_workflow_handle_for(AgentSessionWorkflow.run, f"session-{coder}")
        ended = await handle.result()
        assert ended.state == SessionState.ENDED and ended.ended_by == "tether"
        assert ended.end_reason == "no end was reported before the session deadline"
        assert ended.pseudo_work
        assert [i.kind for i in await team.store.inbox()] == ["pseudo_work"]


async def test_a_forge_rejection_in_any_activity_blocks_without_retrying(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # devops names no credential of its own; the forge read meets the 401 and blocks it.
    monkeypatch.setenv(TOKEN_ENV, REJECTED_TOKEN)
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        devops = team.agent("devops")
        view = await api.start_session(client, team.task_queue, SessionInput(agent=devops))
        assert view.state == SessionState.BLOCKED and view.blocker is not None
        assert view.blocker.subject == "github"
        assert view.notice == (
            "blocked: credential github was rejected by the forge (HTTP 401 on "
            "/repos/acme/app/pulls), founder notified — do not work around it"
        )
        assert forge.requests.count("/repos/acme/app/pulls") == 1  # typed error: not retried
        await api.end_session(client, devops, "test over", "founder")


async def test_handoff_brief_is_read_once_and_leads_the_brief(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder, q = team.agent("coder"), team.task_queue
        await team.store.pool.execute(
            "INSERT INTO handoffs (agent, brief) VALUES ($1, $2)",
            coder,
            "Decided: retries use exponential backoff. Editing api/retry.py; 3 tests failing.",
        )
        first = await api.start_session(client, q, SessionInput(agent=coder))
        assert first.brief is not None
        assert first.brief.text.startswith(
            "Handoff from your previous session:\nDecided: retries use exponential backoff."
        )
        await api.end_session(client, coder, "done", "agent")
        second = await api.start_session(client, q, SessionInput(agent=coder))
        assert second.brief is not None and second.brief.handoff is None
        await api.end_session(client, coder, "done", "agent")


async def test_url_and_deploy_artifacts(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    http_service: HttpService,
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder, q = team.agent("coder"), team.task_queue
        page = Artifact(kind="url", url=f"{http_service.url}/launch")
        await api.start_session(client, q, SessionInput(agent=coder, artifact=page))
        http_service.respond(404)
        ended = await api.end_session(client, coder, "done", "agent")
        assert ended.pseudo_work and "answered HTTP 404" in ended.artifact_result.summary  # type: ignore[union-attr]

        deploy = Artifact(kind="deploy", service="api")
        started = await api.start_session(client, q, SessionInput(agent=coder, artifact=deploy))
        assert started.started_at is not None
        await team.store.pool.execute(
            """INSERT INTO deployments (service, commit, agent, state, finished_at)
               VALUES ('api', 'abc123def4567', $1, 'done', now())""",
            coder,
        )
        ended = await api.end_session(client, coder, "done", "agent")
        assert not ended.pseudo_work
        assert ended.artifact_result is not None
        assert ended.artifact_result.summary.startswith("api deployed abc123def456 at")


async def test_session_commands_as_the_founder_runs_them(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    temporal_address: str,
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = team.agent("coder")
        env = clean_environment(
            TETHER_HOME=str(keys.write(tmp_path / "home")),
            TEMPORAL_ADDRESS=temporal_address,
            DATABASE_URL=fresh_db,
            TETHER_TASK_QUEUE=team.task_queue,
        )
        started = await tether(env, "session", "start", "--agent", coder)
        assert started.code == 0 and started.out.startswith(f"Tether startup brief for {coder}")
        shown = await tether(env, "session", "show", coder)
        assert shown.code == 0 and f"session of {coder}: active" in shown.out
        assert "credential github: ok, accepted (login tether-bot)" in shown.out
        ended = await tether(env, "session", "end", coder, "--reason", "agent went quiet")
        assert (
            ended.code == 1 and "artifact: PSEUDO-WORK  no branch 'coder-work' in app" in ended.out
        )
        listed = await tether(env, "session", "list")
        assert "PSEUDO-WORK" in listed.out and f"{coder:<14} 1 / 1" in listed.out
        inbox = await tether(env, "inbox")
        assert f"[pseudo_work] {coder}'s session ended without a deliverable" in inbox.out
        assert "-> tether inbox done " in inbox.out
        assert f"see: tether session list --agent {coder}" in inbox.out
        again = await tether(env, "session", "end", coder)
        assert again.code == 3 and f"the session of {coder} has ended" in again.err
        blocked_unknown = await tether(env, "session", "recheck", "nobody-here")
        assert (
            blocked_unknown.code == 3 and "nobody-here has no open session" in blocked_unknown.err
        )


async def test_the_tasks_artifact_wins_over_an_easier_declaration(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder, q, repo = team.agent("coder"), team.task_queue, team.repo
        task_id = f"retries-{coder.rsplit('-', 1)[1]}"
        await api.create_task(client, q, _task(task_id, "Add retries", path="api/"))
        await api.claim_task(client, task_id, coder)
        git(repo, "checkout", "-q", "-b", "coder-work")
        notes = tmp_path / "notes.md"
        easy = Artifact(kind="file", path=str(notes))
        await api.start_session(client, q, SessionInput(agent=coder, artifact=easy))
        notes.write_text("thoughts about retries\n")
        ended = await api.end_session(client, coder, "done", "agent")
        assert ended.pseudo_work and ended.artifact_result is not None
        assert ended.artifact_result.artifact == Artifact(
            kind="commit", repository="app", branch="coder-work", path="api/"
        )


async def test_a_report_that_lands_late_while_the_worker_is_down_counts_once(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
) -> None:
    """The hook gives up waiting (the worker is down); the report lands when the worker is
    back; the next hook sends it again with the same update id first: each message's spend is
    counted once, none twice, none lost."""
    import worker as tether_worker
    from tests.support.helpers import make_repo
    from tests.support.payloads import assistant
    from tests.support.sessions import team_config
    from tether.config import DEFAULT_PRICES
    from tether.contracts import TokenUsage
    from tether.store import Store, connect_pool, migrate

    suffix = uuid.uuid4().hex[:8]
    names = {role: f"{role}-{suffix}" for role in ("coder", "devops", "security")}
    repo = make_repo(tmp_path / "app")
    config = team_config(repo, forge, names)
    pool = await connect_pool(fresh_db)
    await migrate(pool)
    store, queue, agent = Store(pool), f"late-{suffix}", names["devops"]
    transcript = tmp_path / "t.jsonl"
    transcript.write_text("")
    sid = {"session_id": "cc-late", "transcript_path": str(transcript)}
    tool = {**sid, "tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_response": {}}
    messages = [(f"m{i}", 1000 * (i + 1), 100 * (i + 1)) for i in range(3)]

    def say(i: int) -> None:
        mid, inp, out = messages[i]
        with transcript.open("a") as f:
            f.write(assistant(mid, inp, 0, 0, out=out))

    try:
        # The gateway stays up; the worker behind it goes down and comes back.
        async with running_gateway(client, store, config, queue, tmp_path / "gw") as rig:
            async with tether_worker.build_worker(client, queue, store, config, keys.KEYS):
                start = await run_hook("SessionStart", agent, {**sid, "source": "startup"}, rig)
                assert start.code == 0
                say(0)
                assert (await run_hook("PostToolUse", agent, tool, rig)).code == 0
            # The worker is down: the report waits 2 s for an answer, gets none, and is kept.
            say(1)
            short = {"TETHER_HOOK_REPORT_TIMEOUT": "2"}
            late = await run_hook("PostToolUse", agent, tool, rig, env=short)
            assert late.code == 0 and "did not finish within 2s" in late.err
            async with tether_worker.build_worker(client, queue, store, config, keys.KEYS):

                async def landed() -> bool:
                    view = await api.session_view(client, agent)
                    return view is not None and view.governor.reports == 2

                # The report the hook gave up on lands once the worker is back.
                await eventually(landed, "the late report to land")
                say(2)
                again = await run_hook("PostToolUse", agent, tool, rig)
                assert again.code == 0 and again.err == ""
                view = await api.session_view(client, agent)
    finally:
        await pool.close()
    assert view is not None
    price = DEFAULT_PRICES["claude-sonnet"]
    exact = sum(price.cost(TokenUsage(input=i, output=o)) for _, i, o in messages)
    assert view.governor.cost_usd == pytest.approx(exact)
    assert view.governor.tokens.input == sum(i for _, i, _ in messages)
    assert view.governor.reports == 3  # the one sent again was answered, not applied again
