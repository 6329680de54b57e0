"""Environments: a service's staging, then its production. Production takes only a commit that
ran healthy in staging for the service's `soak_minutes`, approved with a second founder-signed
tag `production/<service>/<n>`; lock, cooldown and stale-base guard are per environment, and
`tether status` shows what runs where. And an agent's own deployment tag is refused with its
session told why. Real git with a bare remote, the real Temporal server and PostgreSQL."""

from __future__ import annotations

import subprocess
from pathlib import Path

from temporalio.client import Client

from tests.support.deploy import Rig, deploy_rig
from tests.support.helpers import FakeForge, commit_file, eventually, git
from tests.support.sessions import Team, run_hook, running_team
from tether import client as api
from tether.cli.render import render_status
from tether.contracts import DeployState, DeployView
from tether.trust import tags


def production(soak_minutes: float, **more: object) -> dict[str, object]:
    return {"soak_minutes": soak_minutes, **more}


async def trail(rig: Rig, view: DeployView) -> list[str]:
    return [r["kind"] for r in await rig.store.audit_trail(deployment_id=view.deployment_id)]


def rollout_starts(rig: Rig, view: DeployView) -> list[float]:
    return [start for d, start, _ in rig.rollouts() if d == view.deployment_id]


def verify_by_hand(rig: Rig, tmp_path: Path, tag: str) -> subprocess.CompletedProcess[str]:
    """`git verify-tag` in the shared remote, as anyone with the founder's public key runs it."""
    remote = git(rig.repo, "remote", "get-url", "origin")
    signers = tmp_path / "allowed_signers"
    signers.write_text(tags.allowed_signers(rig.key.public_key()))
    return subprocess.run(
        ["git", "-C", remote, "-c", f"gpg.ssh.allowedSignersFile={signers}", "verify-tag", tag],
        capture_output=True,
        text=True,
        check=False,
    )


async def test_production_takes_a_commit_only_after_its_time_healthy_in_staging(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    soak = 0.05  # 3 s
    async with deploy_rig(client, fresh_db, tmp_path, production=production(soak)) as rig:
        # Never in staging: refused when requested, saying what to do.
        early = await rig.request("main", environment="production")
        assert early.state == DeployState.REFUSED
        assert "has never run healthy in" in early.reason and "deploy it to staging first" in (
            early.reason
        )

        staged = await rig.deploy("main")
        assert staged.state == DeployState.DONE
        promoted = await rig.request("main", environment="production")
        assert promoted.state == DeployState.QUEUED and promoted.commit == staged.commit
        # The staging tag does not approve production.
        wrong = await rig.approve(promoted, tag=f"staging/{rig.service}/1")
        assert not wrong.accepted and "is not a production tag" in wrong.reason
        verdict = await rig.approve(promoted)
        assert verdict.accepted, verdict.reason
        assert verdict.approval is not None
        tag = verdict.approval.tag
        assert tag == f"production/{rig.service}/1"
        done = await rig.finish(promoted)
        assert done.state == DeployState.DONE, done.reason
        assert done.reason.startswith(f"{rig.service} in production runs")

        # It waited for the soak, not for the staging cooldown (30 minutes, staging's own).
        kinds = await trail(rig, promoted)
        assert "soak_wait" in kinds and "soak_passed" in kinds
        assert kinds.index("soak_passed") < kinds.index("rollout_started")
        staged_end = max(end for d, _, end in rig.rollouts() if d == staged.deployment_id)
        (started,) = rollout_starts(rig, promoted)
        assert started - staged_end >= soak * 60

        # What runs where, as the founder reads it.
        running = {(r["environment"], r["commit"]) for r in await rig.store.running_everywhere()}
        assert running == {("staging", staged.commit), ("production", staged.commit)}
        report = await api.gather_status(rig.store)
        text = render_status(report.model_dump(mode="json"))
        lines = [line for line in text.splitlines() if line.strip().startswith(rig.service)]
        assert any(" staging " in f" {line} " for line in lines), text
        assert any(" production " in f" {line} " for line in lines), text
        envs = {d.deployment_id: d.environment for d in report.deployments}
        assert envs[promoted.deployment_id] == "production"
        assert envs[staged.deployment_id] == "staging"

        # The founder's production tag is on the shared remote, and git agrees it is the
        # founder's.
        checked = verify_by_hand(rig, tmp_path, tag)
        assert checked.returncode == 0 and 'Good "git" signature for founder' in checked.stderr

        # Staging's cooldown still holds for staging.
        again = await rig.deploy("main")
        assert again.state == DeployState.REFUSED and "less than 30 minutes ago" in again.reason


async def test_a_commit_replaced_in_staging_too_soon_is_refused_and_a_soaking_one_can_be_rejected(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    async with deploy_rig(
        client, fresh_db, tmp_path, cooldown_minutes=0, production=production(1)
    ) as rig:
        first = await rig.deploy("main")
        assert first.state == DeployState.DONE
        commit_file(rig.repo, "app.py", "VERSION = 2\n", "v2")
        git(rig.repo, "push", "-q", "origin", "HEAD")
        second = await rig.deploy("main")
        assert second.state == DeployState.DONE and second.commit != first.commit

        # The first ran in staging for seconds, not the minute production asks.
        short = await rig.request(first.commit or "", environment="production")
        assert (await rig.approve(short)).accepted
        refused = await rig.finish(short)
        assert refused.state == DeployState.REFUSED
        assert "before another commit replaced it" in refused.reason
        assert "production needs 1 minutes there" in refused.reason

        # The second is soaking: approved, it waits, visibly, and the founder can still say no.
        soaking = await rig.request("main", environment="production")
        assert (await rig.approve(soaking)).accepted

        async def waiting() -> DeployView | None:
            view = await api.deploy_view(client, soaking.deployment_id)
            return view if view.waiting_for else None

        view = await eventually(waiting, "the production deployment to wait for the soak")
        assert "production may take it at" in view.waiting_for
        assert not view.holds_lock  # waiting for the soak, it blocks nobody
        assert (await rig.approve(soaking, decision="reject")).accepted
        ended = await rig.finish(soaking)
        assert ended.state == DeployState.REFUSED and "rejected by the founder" in ended.reason
        assert not rollout_starts(rig, soaking) and not rollout_starts(rig, short)


async def test_lock_and_stale_base_hold_per_environment(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    async with deploy_rig(
        client, fresh_db, tmp_path, cooldown_minutes=0, production=production(0)
    ) as rig:
        old = (await rig.deploy("main")).commit
        commit_file(rig.repo, "app.py", "VERSION = 2\n", "v2")
        git(rig.repo, "push", "-q", "origin", "HEAD")
        new = (await rig.deploy("main")).commit
        # Production runs nothing yet: the newer commit goes there although staging's older
        # one never did.
        assert (await rig.deploy(new or "", environment="production")).state == DeployState.DONE
        # The older commit, once healthy in staging, is stale in production now.
        stale = await rig.deploy(old or "", environment="production")
        assert stale.state == DeployState.REFUSED
        assert f"which {rig.service} runs in production now" in stale.reason
        # Each environment has its own lock.
        queue = await api.deploy_queue(client, rig.service, "production")
        assert queue.service == f"{rig.service}/production"
        staging_lock = await api.deploy_queue(client, rig.service)
        assert staging_lock.service == rig.service
        assert staging_lock.granted == 2 and queue.granted == 2


async def test_an_agents_own_tag_is_refused_and_its_session_told_why(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    async with running_team(client, fresh_db, tmp_path / "team", forge) as team:
        devops = team.agent("devops")
        async with deploy_rig(client, fresh_db, tmp_path / "deploy", (devops,)) as rig:
            await _agent_tag_told(client, team, rig, devops, tmp_path)


async def _agent_tag_told(
    client: Client, team: Team, rig: Rig, devops: str, tmp_path: Path
) -> None:
    sid = {"session_id": "cc-ops"}
    await run_hook("SessionStart", devops, {**sid, "source": "startup"}, team)

    # The agent tags a commit itself, as a pipeline that keys on tags would take it, and
    # asks Tether to deploy that tag.
    clone = rig.agent_clone(tmp_path / "agent-clone")
    mine = f"staging/{rig.service}/5"
    who = {"GIT_COMMITTER_NAME": devops, "GIT_COMMITTER_EMAIL": f"{devops}@bots.invalid"}
    head = git(rig.repo, "rev-parse", "HEAD")
    git(clone, "tag", "-a", "-m", "ship it", mine, head, env=who)
    git(clone, "push", "-q", "origin", f"refs/tags/{mine}")
    refused = await rig.request(mine, agent=devops)
    assert refused.state == DeployState.REFUSED
    assert f"{mine} is not signed" in refused.reason
    assert "Deployment tags are the founder's alone" in refused.reason

    # The agent hears why with the answer to its next tool call.
    read = {
        **sid,
        "tool_name": "Read",
        "tool_input": {"file_path": "/srv/app.py"},
        "tool_response": {"file": {"content": "VERSION = 1"}},
    }

    async def told() -> str | None:
        post = await run_hook("PostToolUse", devops, read, team)
        if post.answer is None:
            return None
        return str(post.answer["hookSpecificOutput"]["additionalContext"])

    context = await eventually(told, "the agent's session to be told")
    assert f"Tether refused {mine} for {rig.service}" in context
    assert "do not push deployment tags" in context
    # Once: the next answer does not repeat it.
    assert (await run_hook("PostToolUse", devops, read, team)).answer is None

    # A second tag, never named in a request, pushed under the agent's name: the watch
    # finds it at its next round and tells the same agent; the first is not told again.
    other = f"production/{rig.service}/1"
    git(clone, "tag", "-a", "-m", "prod too", other, head, env=who)
    git(clone, "push", "-q", "origin", f"refs/tags/{other}")
    posted: list[str] = await client.execute_workflow(
        "CredentialWatchWorkflow",
        id=f"watch-{rig.service}",
        task_queue=rig.task_queue,
        result_type=list[str],
    )
    assert posted == [f"tag:{other}"]
    context = await eventually(told, "the watch's notice")
    assert f"Tether refused {other}" in context and mine not in context
    items = {i.detail["tag"]: i for i in await rig.store.inbox() if i.kind == "tag_refused"}
    assert set(items) == {mine, other}
    assert {i.detail["agent"] for i in items.values()} == {devops}
    assert not rig.rollouts()
