"""Deployment gates end to end: a real service on 127.0.0.1 whose version the rollout command
changes, real git history, the founder's real Ed25519 key, the dev server and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

import worker as tether_worker
from tests.support import keys
from tests.support.cli import tether
from tests.support.deploy import ROLLOUT, VersionService, deploy_rig
from tests.support.helpers import clean_environment, commit_file, eventually, git, make_repo
from tether import client as api
from tether.client import connect
from tether.client.connection import sealed
from tether.contracts import (
    DeployRequest,
    DeployState,
    DeployView,
    LockGrant,
    LockInput,
    LockRequest,
    LockView,
)
from tether.errors import TetherError
from tether.ops.stack import free_port, start_temporal_dev_server, temporal_binary
from tether.store import Store, connect_pool
from tether.trust.signing import generate, load_private, sign
from workflows.deployment import DeploymentWorkflow

ROOT = Path(__file__).resolve().parent.parent


async def test_an_approved_deploy_rolls_out_checks_health_and_records_what_runs(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    async with deploy_rig(client, fresh_db, tmp_path) as rig:
        view = await rig.request("main")
        head = git(rig.repo, "rev-parse", "HEAD")
        assert view.state == DeployState.QUEUED and view.commit == head
        verdict = await rig.approve(view)
        assert verdict.accepted, verdict.reason
        done = await rig.finish(view)
        assert done.state == DeployState.DONE, done.reason
        assert rig.served() == head  # the service really runs the new version
        assert [h.passed for h in done.health] == [True]
        assert await rig.store.deployed(rig.service) == (head, "main", view.deployment_id)
        kinds = [r["kind"] for r in await rig.store.audit_trail(deployment_id=view.deployment_id)]
        assert kinds == [
            "queued",
            "approval_accepted",
            "lock_requested",
            "rollout_started",
            "rollout_finished",
            "health_passed",
            "done",
            "lock_released",
        ]
        queue = await api.deploy_queue(client, rig.service)
        assert queue.holder is None and queue.waiting == [] and queue.granted == 1


async def test_forged_unsigned_and_misdirected_approvals_are_refused_and_logged(
    client: Client, fresh_db: str, tmp_path: Path, temporal_address: str
) -> None:
    async with deploy_rig(client, fresh_db, tmp_path) as rig:
        view = await rig.request("main")
        unsigned = {**rig.approval(view), "signature": ""}
        forged = rig.approval(view, key=Ed25519PrivateKey.generate())
        other_commit = rig.approval(view, commit="0" * 40)
        expired = rig.approval(
            view, ttl=timedelta(minutes=5), now=datetime.now(UTC) - timedelta(hours=1)
        )
        # The plain Temporal CLI: anyone with access to the namespace can send a signal.
        for body in (unsigned, forged, {"approve": "yes please"}):
            proc = await asyncio.create_subprocess_exec(
                str(temporal_binary()),
                "workflow",
                "signal",
                "--address",
                temporal_address,
                "--workflow-id",
                view.deployment_id,
                "--name",
                "approve",
                "--input",
                json.dumps(body),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
            assert proc.returncode == 0, err
        verdict = await api.submit_approval(client, view.deployment_id, other_commit)
        assert not verdict.accepted and "for another deployment: commit" in verdict.reason
        verdict = await api.submit_approval(client, view.deployment_id, expired)
        assert not verdict.accepted and verdict.reason.startswith("the approval expired at")

        async def refusals() -> list[str]:
            rows = await rig.store.audit_trail(deployment_id=view.deployment_id)
            return [r["detail"]["reason"] for r in rows if r["kind"] == "approval_refused"]

        async def judged() -> bool:
            return len(await refusals()) == 2

        await eventually(judged, "two judged refusals", seconds=10)

        async def guarded() -> list[str]:
            _, rows = await rig.store.refusals()
            return [r["reason"] for r in rows if r["workflow_id"] == view.deployment_id]

        async def three_guarded() -> bool:
            return len(await guarded()) == 3

        await eventually(three_guarded, "three refusals at the door", seconds=10)
        # The unsigned and the forged approval are refused at the workflow's door (no
        # founder's signature on the message or in it), before any judge, and so is something
        # that is not an approval at all (the guard decodes it: the SDK would drop it without a
        # trace); the founder's own approvals for another commit, or expired, are judged and
        # audited.
        reasons = sorted(await guarded())
        assert reasons[1:] == [
            "it is not sealed (only the founder may send approve)",
            "the approval or order is not signed with the founder's key",
        ]
        assert reasons[0].startswith("it is not an Approval (") and "deployment_id" in reasons[0]
        # The founder sees that someone tried: one inbox item (a day, for this deployment),
        # and the count of refusals on the workflow.
        items = [i for i in await rig.store.inbox() if i.kind == "founder_action_refused"]
        assert [i.subject for i in items] == [view.deployment_id]
        assert items[0].title.startswith(f"A founder's approve for {view.deployment_id}")
        described = await client.get_workflow_handle(view.deployment_id).describe()
        assert (await described.memo_value("tether_refused")) == {"approve": 3}
        with pytest.raises(TetherError, match=r"not an approval \(.*approve"):
            await api.submit_approval(client, view.deployment_id, {"approve": "yes please"})
        still = await api.deploy_view(client, view.deployment_id)
        assert still.state == DeployState.QUEUED and still.approval is None
        assert not rig.rollouts()  # nothing was deployed
        # The founder's real approval still works afterwards.
        assert (await rig.approve(view)).accepted
        assert (await rig.finish(view)).state == DeployState.DONE


async def test_a_commit_older_than_the_running_one_is_refused_naming_both(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    async with deploy_rig(client, fresh_db, tmp_path, cooldown_minutes=0) as rig:
        base = git(rig.repo, "rev-parse", "HEAD")
        git(rig.repo, "checkout", "-q", "-b", "old-branch")
        old = commit_file(rig.repo, "app.py", "VERSION = 'old'\n", "work on an old base")
        git(rig.repo, "checkout", "-q", "main")
        new = commit_file(rig.repo, "app.py", "VERSION = 2\n", "v2")
        first = await rig.request("main")
        await rig.approve(first)
        assert (await rig.finish(first)).state == DeployState.DONE
        stale = await rig.request("old-branch", agent="coder")
        assert stale.commit == old
        await rig.approve(stale)
        refused = await rig.finish(stale)
        assert refused.state == DeployState.REFUSED
        assert refused.reason.startswith(
            f"commit {old[:12]} does not descend from {new[:12]}, which {rig.service} runs now"
        )
        assert rig.served() == new  # the newer deployment was not overwritten
        assert base != old
        # A descendant is fine.
        newer = commit_file(rig.repo, "app.py", "VERSION = 3\n", "v3")
        third = await rig.request(newer)
        await rig.approve(third)
        assert (await rig.finish(third)).state == DeployState.DONE and rig.served() == newer


async def test_a_rejection_ends_the_request_and_an_unknown_ref_is_refused(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    async with deploy_rig(client, fresh_db, tmp_path) as rig:
        view = await rig.request("main")
        assert (await rig.approve(view, decision="reject")).accepted
        ended = await rig.finish(view)
        assert ended.state == DeployState.REFUSED and ended.reason == "rejected by the founder: ok"
        bad = await rig.request("no-such-branch")
        assert bad.state == DeployState.REFUSED
        assert "ref 'no-such-branch' is not a commit, tag or branch" in bad.reason
        # Rejecting acted on the approval request: it left the inbox; the refusals are notices.
        items = {i.kind: i for i in await rig.store.inbox(include_cleared=True)}
        assert items["deploy_approval"].cleared_at is not None
        assert items["deploy_approval"].subject == view.deployment_id
        assert items["deploy_refused"].cleared_at is None
        refused = items["deploy_refused"]
        assert refused.command == f"tether inbox done {refused.id}"
        assert refused.see == f"tether deploy show {refused.subject}"


async def test_concurrent_requests_roll_out_one_at_a_time_and_none_is_lost(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    """Property: however requests and approvals interleave, rollouts never overlap and every
    request ends done, refused, or still waiting — none lost."""
    async with deploy_rig(client, fresh_db, tmp_path, cooldown_minutes=0, pause=0.3) as rig:
        views = await asyncio.gather(*(rig.request("main", agent=f"agent{i}") for i in range(8)))
        await asyncio.gather(
            *(rig.approve(v) for v in views[:6]), rig.approve(views[6], decision="reject")
        )
        approved = {v.deployment_id for v in views[:6]}

        async def a_queue() -> Any:
            # What `tether status` shows of the lock, from the deployments' own rows.
            queues = (await api.gather_status(rig.store)).queues
            return queues[0] if queues and queues[0].holder and queues[0].waiting else None

        queue = await eventually(a_queue, "a holder and a queue in the status", seconds=30)
        assert queue.service == rig.service and queue.holder in approved
        assert queue.holder not in queue.waiting and set(queue.waiting) <= approved
        ended = await asyncio.gather(*(rig.finish(v) for v in views[:7]))
        assert sorted(e.state for e in ended) == [DeployState.DONE] * 6 + [DeployState.REFUSED]
        shown = await api.gather_status(rig.store)
        assert shown.queues == []  # the unapproved one never queued
        assert sorted(d.state for d in shown.deployments) == ["done"] * 6 + ["queued", "refused"]
        waiting = await api.deploy_view(client, views[7].deployment_id)
        assert waiting.state == DeployState.QUEUED and not waiting.holds_lock
        spans = rig.rollouts()
        assert len(spans) == 6 and len({d for d, _, _ in spans}) == 6
        for (_, _, end), (_, start, _) in itertools.pairwise(spans):
            assert end <= start, f"rollouts overlap: {spans}"
        queue = await api.deploy_queue(client, rig.service)
        assert queue.holder is None and queue.waiting == [] and queue.granted == 6
        # The lock crossed continue-as-new (the test server suggests it every 40 events) with
        # its queue and counts intact.
        runs = [r async for r in client.list_workflows(f"WorkflowId = 'lock-{rig.service}'")]
        assert len(runs) > 1
        trail = await rig.store.audit_trail(service=rig.service)
        assert {r["deployment_id"] for r in trail if r["kind"] == "queued"} == {
            v.deployment_id for v in views
        }
        # The unapproved one never held the service up; cancelled, it ends and says so.
        handle = client.get_workflow_handle(waiting.deployment_id)
        await handle.cancel()

        async def refused() -> list[dict[str, Any]] | None:
            rows = await rig.store.audit_trail(deployment_id=waiting.deployment_id)
            return rows if any(r["kind"] == "refused" for r in rows) else None

        rows = await eventually(refused, "the cancelled deployment's refusal", seconds=10)
        assert [r["detail"]["reason"] for r in rows if r["kind"] == "refused"] == [
            "the deployment was cancelled"
        ]


async def test_the_lock_is_released_when_a_rollout_is_cancelled(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    async with deploy_rig(
        client, fresh_db, tmp_path, cooldown_minutes=0, pause=30, rollout_heartbeat_seconds=6
    ) as rig:
        slow = await rig.request("main")
        await rig.approve(slow)
        await eventually(rig.rollout_started, "the first rollout to start", seconds=10)
        queued = await rig.request("main", agent="coder")
        await rig.approve(queued)
        await client.get_workflow_handle(slow.deployment_id).cancel()

        async def stopped() -> DeployView | None:
            view = await api.deploy_view(client, slow.deployment_id)
            return view if view.state != DeployState.ROLLING_OUT else None

        cancelled = await eventually(stopped, "the cancelled rollout to stop")
        assert cancelled.reason == "the deployment was cancelled"

        # The next in line got the lock; its rollout (30 s here) is under way.
        async def next_holds() -> bool:
            return (await api.deploy_view(client, queued.deployment_id)).holds_lock

        await eventually(next_holds, "the next in line to hold the lock")
        # The cancelled rollout's command was stopped (it never finished), before the next began.
        lines = rig.log.read_text().split()
        assert f"end {slow.deployment_id}" not in " ".join(lines)
        await client.get_workflow_handle(queued.deployment_id).cancel()
        await asyncio.sleep(0.5)
        assert len([w for w in rig.log.read_text().split() if w == "start"]) <= 2


async def test_cooldown_refuses_a_second_rollout_for_30_minutes_then_allows_one(
    time_skipping_env: WorkflowEnvironment, fresh_db: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    async with deploy_rig(env.client, fresh_db, tmp_path) as rig:
        first = await rig.deploy(now=await env.get_current_time())
        assert first.state == DeployState.DONE
        await env.sleep(timedelta(minutes=12))
        second = await rig.request("main", agent="coder")
        await rig.approve(second, now=await env.get_current_time())
        refused = await rig.finish(second)
        assert refused.state == DeployState.REFUSED
        assert f"was rolled out by {first.deployment_id} less than 30 minutes ago" in refused.reason
        assert "(18 min left)" in refused.reason
        assert len(rig.rollouts()) == 1
        await env.sleep(timedelta(minutes=19))
        third = await rig.request("main", agent="coder")
        await rig.approve(third, now=await env.get_current_time())
        assert (await rig.finish(third)).state == DeployState.DONE
        assert len(rig.rollouts()) == 2


async def test_an_approval_that_expires_while_waiting_must_be_given_again(
    time_skipping_env: WorkflowEnvironment, fresh_db: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    async with deploy_rig(env.client, fresh_db, tmp_path, cooldown_mode="wait") as rig:
        first = await rig.deploy(now=await env.get_current_time())
        assert first.state == DeployState.DONE
        # Approved for 10 minutes, but the cooldown makes it wait 30: the approval lapses.
        second = await rig.request("main", agent="coder")
        await rig.approve(second, now=await env.get_current_time(), ttl=timedelta(minutes=10))
        await env.sleep(timedelta(minutes=31))

        async def expired() -> list[str] | None:
            rows = await rig.store.audit_trail(deployment_id=second.deployment_id)
            kinds = [r["kind"] for r in rows]
            return kinds if "approval_expired" in kinds else None

        kinds = await eventually(expired, "the lapsed approval", seconds=10)
        assert kinds[-2:] == ["cooldown_wait", "approval_expired"], kinds
        view = await api.deploy_view(env.client, second.deployment_id)
        assert view.state == DeployState.QUEUED and view.approval is None
        assert len(rig.rollouts()) == 1
        await rig.approve(second, now=await env.get_current_time())
        assert (await rig.finish(second)).state == DeployState.DONE
        # Nobody approves this one: it expires after the request window (24 h).
        lapsed = await rig.request("main", agent="coder")
        await env.sleep(timedelta(hours=24, minutes=1))

        async def over() -> DeployView | None:
            view = await api.deploy_view(env.client, lapsed.deployment_id)
            return view if view.state != DeployState.QUEUED else None

        ended = await eventually(over, "the unapproved request to expire", seconds=10)
        assert ended.state == DeployState.EXPIRED
        assert ended.reason == "no valid approval within 24 hours of the request"


async def test_the_cooldown_survives_restarting_the_worker_and_the_temporal_server(
    fresh_db: str, tmp_path: Path
) -> None:
    async def server() -> WorkflowEnvironment:
        return await start_temporal_dev_server(
            port=free_port(), ui_port=None, http_port=None, db_file=None
        )

    first_server = await server()
    try:
        client = await connect(
            first_server.client.service_client.config.target_host, "default", signer=keys.FOUNDER
        )
        async with deploy_rig(client, fresh_db, tmp_path) as rig:
            first = await rig.request("main")
            await rig.approve(first)
            assert (await rig.finish(first)).state == DeployState.DONE
            config, service, repo = rig.config, rig.service, rig.repo
    finally:
        await first_server.shutdown()  # every workflow, lock and timer is gone with it

    second_server = await server()
    try:
        client = await connect(
            second_server.client.service_client.config.target_host, "default", signer=keys.FOUNDER
        )
        pool = await connect_pool(fresh_db)
        try:
            async with tether_worker.build_worker(
                client, "after-restart", Store(pool), config, keys.KEYS
            ):
                again = await api.request_deploy(
                    client,
                    "after-restart",
                    DeployRequest(service=service, ref="main", agent="coder"),
                )
                key = load_private(tmp_path / "founder" / "founder.key")
                tag, _ = api.tag_approval(again, repo, "origin", key, "founder")
                signed = sign(
                    api.prepare_approval(
                        again, decision="approve", by="founder", reason="", ttl=None, tag=tag
                    ),
                    key,
                )
                assert (await api.submit_approval(client, again.deployment_id, signed)).accepted
                handle = client.get_workflow_handle_for(DeploymentWorkflow.run, again.deployment_id)
                refused = await asyncio.wait_for(handle.result(), timeout=60)
        finally:
            await pool.close()
    finally:
        await second_server.shutdown()
    assert refused.state == DeployState.REFUSED
    assert f"was rolled out by {first.deployment_id} less than 30 minutes ago" in refused.reason


async def test_a_worker_killed_mid_rollout_is_replaced_and_the_lock_is_not_leaked(
    client: Client, temporal_address: str, fresh_db: str, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "app")
    head = commit_file(repo, "app.py", "VERSION = 1\n", "v1")
    state, log = tmp_path / "served", tmp_path / "rollouts.log"
    (tmp_path / "rollout.py").write_text(ROLLOUT)
    site = VersionService(state)
    key_path, public = generate(tmp_path / "founder")
    service = f"web-{uuid.uuid4().hex[:8]}"
    (tmp_path / "tether.toml").write_text(
        f'[repositories.app]\npath = "{repo}"\n\n'
        f'[founder]\npublic_key = "{public}"\n\n'
        f"[services.{service}]\n"
        'repository = "app"\n'
        f'rollout = "{sys.executable} {tmp_path / "rollout.py"} {state} {log} 3"\n'
        "cooldown_minutes = 0\nrollout_heartbeat_seconds = 6\n"
        f'[[services.{service}.health_checks]]\nkind = "http"\nurl = "{site.url}"\n'
    )
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "TETHER_"))}
    env.update(
        TEMPORAL_ADDRESS=temporal_address,
        DATABASE_URL=fresh_db,
        TETHER_TASK_QUEUE=queue,
        TETHER_HOME=str(keys.write(tmp_path)),
    )

    async def start_worker(name: str) -> asyncio.subprocess.Process:
        out = tmp_path / f"{name}.log"
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "worker.py"),
            env=env,
            stdout=out.open("w"),
            stderr=asyncio.subprocess.STDOUT,
        )
        await eventually(lambda: "worker polling" in out.read_text(), f"{name} worker", 30)
        return proc

    first = await start_worker("first")
    second: asyncio.subprocess.Process | None = None
    try:
        view = await api.request_deploy(
            client, queue, DeployRequest(service=service, ref="main", agent="devops")
        )
        key = load_private(key_path)
        tag, _ = api.tag_approval(view, repo, "origin", key, "founder")
        approval = api.prepare_approval(
            view, decision="approve", by="founder", reason="", ttl=None, tag=tag
        )
        signed = sign(approval, key)
        assert (await api.submit_approval(client, view.deployment_id, signed)).accepted
        await eventually(lambda: log.exists() and "start" in log.read_text(), "the rollout")
        first.kill()  # mid-rollout: no clean shutdown, no chance to report
        await first.wait()
        second = await start_worker("second")
        handle = client.get_workflow_handle_for(DeploymentWorkflow.run, view.deployment_id)
        done = await asyncio.wait_for(handle.result(), timeout=90)
        assert done.state == DeployState.DONE, done.reason
        text = log.read_text().split()
        # Twice, never more: the lost attempt (its command, in its own process group, still
        # finished) and the retry on the new worker after the heartbeat timeout.
        assert text.count("start") == 2 and text.count("end") == 2
        assert state.read_text() == head  # what the service serves
        queue_view = await api.deploy_queue(client, service)
        assert queue_view.holder is None and queue_view.waiting == []
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), timeout=60)
        site.stop()


async def test_deploy_commands_as_the_founder_and_the_agents_run_them(
    client: Client, fresh_db: str, tmp_path: Path, temporal_address: str
) -> None:
    async with deploy_rig(client, fresh_db, tmp_path) as rig:
        # The founder's tether.toml names the service's repository: its tags are made there.
        toml = tmp_path / "founder-tether.toml"
        toml.write_text(
            f'[repositories.app]\npath = "{rig.repo}"\n\n'
            f'[services.{rig.service}]\nrepository = "app"\nrollout = "true"\n'
        )
        env = clean_environment(
            TETHER_HOME=str(rig.home),
            TETHER_CONFIG=str(toml),
            TEMPORAL_ADDRESS=temporal_address,
            DATABASE_URL=fresh_db,
            TETHER_TASK_QUEUE=rig.task_queue,
        )
        again = await tether(env, "keygen")
        assert again.code == 2 and "already exists" in again.err
        fresh = await tether({**env, "TETHER_HOME": str(tmp_path / "elsewhere")}, "keygen")
        assert fresh.code == 0 and '[founder]\npublic_key = "' in fresh.out
        assert oct((tmp_path / "elsewhere" / "founder.key").stat().st_mode & 0o777) == "0o600"

        asked = await tether(
            env, "deploy", "request", rig.service, "--ref", "main", "--agent", "devops", "--json"
        )
        assert asked.code == 0, asked.err
        deployment = json.loads(asked.out)["deployment_id"]
        printed = await tether(env, "approve", deployment, "--print")
        assert printed.code == 0 and json.loads(printed.out)["signature"]
        # The Web UI path: the printed approval as the input of a signal named "approve".
        proc = await asyncio.create_subprocess_exec(
            str(temporal_binary()),
            "workflow",
            "signal",
            "--address",
            temporal_address,
            "--workflow-id",
            deployment,
            "--name",
            "approve",
            "--input",
            printed.out.strip(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await asyncio.wait_for(proc.communicate(), timeout=30)
        handle = client.get_workflow_handle_for(DeploymentWorkflow.run, deployment)
        assert (await asyncio.wait_for(handle.result(), timeout=60)).state == DeployState.DONE
        shown = await tether(env, "deploy", "show", deployment)
        assert f"deployment {deployment}: done" in shown.out
        assert "approval_accepted" in shown.out and "lock_released" in shown.out
        queue = await tether(env, "deploy", "queue", rig.service)
        assert queue.out.strip() == f"{rig.service}: free"
        late = await tether(env, "approve", deployment)
        assert late.code == 3 and f"deployment {deployment} is done" in late.err

        second = await tether(
            env, "deploy", "request", rig.service, "--ref", "main", "--agent", "coder", "--json"
        )
        other = json.loads(second.out)["deployment_id"]
        rejected = await tether(env, "reject", other, "--reason", "not on a Friday")
        assert rejected.code == 0 and f"{other} rejected" in rejected.out
        handle = client.get_workflow_handle_for(DeploymentWorkflow.run, other)
        ended = await asyncio.wait_for(handle.result(), timeout=60)
        assert ended.reason == "rejected by the founder: not on a Friday"
        unknown = await tether(env, "deploy", "request", "nope", "--ref", "main", "--agent", "x")
        assert unknown.code == 3 and "service 'nope' is not in tether.toml" in unknown.out


async def test_a_dead_holder_loses_the_lock_with_its_lease_and_dead_requesters_are_skipped(
    time_skipping_env: WorkflowEnvironment, fresh_db: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    async with deploy_rig(env.client, fresh_db, tmp_path, cooldown_mode="wait") as rig:
        first = await rig.deploy(now=await env.get_current_time())
        assert first.state == DeployState.DONE
        # Inside the cooldown the next approved deployment holds the lock while it waits...
        holder = await rig.request("main", agent="coder")
        await rig.approve(holder, now=await env.get_current_time(), ttl=timedelta(hours=2))
        waiter = await rig.request("main", agent="devops")
        await rig.approve(waiter, now=await env.get_current_time(), ttl=timedelta(hours=2))
        last = await rig.request("main", agent="marketing")
        await rig.approve(last, now=await env.get_current_time(), ttl=timedelta(hours=2))

        async def queued() -> LockView | None:
            queue = await api.deploy_queue(env.client, rig.service)
            return queue if queue.holder and len(queue.waiting) == 2 else None

        queue = await eventually(queued, "a holder and two waiters")
        assert queue.holder is not None and queue.holder.deployment_id == holder.deployment_id
        # ...and then dies without a word, as does the first one waiting behind it.
        await env.client.get_workflow_handle(holder.deployment_id).terminate("killed")
        await env.client.get_workflow_handle(waiter.deployment_id).terminate("killed")
        await env.sleep(timedelta(minutes=11))  # the holder's lease runs out

        async def moved_on() -> LockView | None:
            queue = await api.deploy_queue(env.client, rig.service)
            held = queue.holder and queue.holder.deployment_id == last.deployment_id
            return queue if held else None

        queue = await eventually(moved_on, "the lock to pass to the last request")
        assert queue.expired == [holder.deployment_id]
        assert queue.skipped == [waiter.deployment_id]
        assert queue.holder is not None and queue.holder.deployment_id == last.deployment_id
        await env.sleep(timedelta(minutes=20))  # the rest of the cooldown

        async def done() -> bool:
            view = await api.deploy_view(env.client, last.deployment_id)
            return view.state == DeployState.DONE

        await eventually(done, "the last deployment to roll out")


async def test_failing_health_checks_fail_the_deployment_and_run_the_rollback(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    marker = tmp_path / "rolled-back"
    async with deploy_rig(
        client,
        fresh_db,
        tmp_path,
        rollback=f"echo $TETHER_COMMIT > {marker}",
        health_checks=[{"kind": "http", "url": "http://127.0.0.1:9/health", "timeout_seconds": 2}],
    ) as rig:
        view = await rig.request("main")
        await rig.approve(view)
        failed = await rig.finish(view)
        assert failed.state == DeployState.FAILED and failed.rolled_back
        assert failed.reason.startswith("health check http#1 failed: GET http://127.0.0.1:9/health")
        assert marker.read_text().strip() == view.commit  # the rollback ran, with the variables
        assert await rig.store.deployed(rig.service) is None  # a failed build is not "running"
        kinds = [r["kind"] for r in await rig.store.audit_trail(deployment_id=view.deployment_id)]
        assert kinds[-4:] == ["health_failed", "rolled_back", "failed", "lock_released"]
        items = [i for i in await rig.store.inbox() if i.kind == "deploy_failed"]
        assert len(items) == 1 and items[0].see == f"tether deploy show {view.deployment_id}"


async def test_a_forged_lock_grant_cannot_make_rollouts_overlap(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    async with deploy_rig(client, fresh_db, tmp_path, cooldown_minutes=0, pause=3) as rig:
        first = await rig.request("main")
        await rig.approve(first)
        await eventually(rig.rollout_started, "the first rollout to start", seconds=10)
        jumper = await rig.request("main", agent="coder")
        await rig.approve(jumper)
        # Anyone who can reach Temporal can send the lock's signal to their own deployment.
        forged = LockGrant(
            service=rig.service, deployment_id=jumper.deployment_id, lease_seconds=600
        )
        await client.get_workflow_handle(jumper.deployment_id).signal("lock_granted", forged)
        refused = await rig.finish(jumper)
        assert refused.state == DeployState.REFUSED
        assert refused.reason.startswith(f"{first.deployment_id} is rolling out {rig.service}")
        assert (await rig.finish(first)).state == DeployState.DONE
        assert [d for d, _, _ in rig.rollouts()] == [first.deployment_id]
        queue = await api.deploy_queue(client, rig.service)
        assert queue.holder is None and queue.waiting == []


async def test_a_rejected_deployment_made_holder_by_a_forged_acquire_lets_go_at_once(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    async with deploy_rig(client, fresh_db, tmp_path, cooldown_minutes=0) as rig:
        unapproved = await rig.request("main")
        forged = LockRequest(
            deployment_id=unapproved.deployment_id,
            service=rig.service,
            agent="devops",
            requested_at=datetime.now(UTC),
        )
        lock = await client.start_workflow(
            "ServiceLockWorkflow",
            LockInput(service=rig.service),
            id=f"lock-{rig.service}",
            task_queue=rig.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )

        async def holder() -> str | None:
            view: LockView = await lock.query("queue", result_type=LockView)
            return view.holder.deployment_id if view.holder else None

        # An acquire from anyone but a worker (here: unsealed) is refused at the lock's door ...
        unsealed = Client(**{**client.config(), "interceptors": []})
        await unsealed.get_workflow_handle(lock.id).signal("acquire", forged)
        await eventually(
            lambda: _refused_at(rig, lock.id, "acquire"), "the forged acquire to be refused"
        )
        assert await holder() is None
        # ... and should a worker ever queue an unapproved deployment, its rejection still
        # frees the service at once (patched deploy-always-releases).
        await sealed(client, keys.WORKER).get_workflow_handle(lock.id).signal("acquire", forged)
        assert await eventually(holder, "the holder") == unapproved.deployment_id
        assert (await rig.approve(unapproved, decision="reject")).accepted
        # Rejected, it ends, and the lock is free at once (not when the lease runs out).
        await eventually(lambda: _free(holder), "the lock to be free", seconds=15)


async def _free(holder: Any) -> bool:
    return await holder() is None


async def _refused_at(rig: Any, workflow_id: str, handler: str) -> bool:
    _, rows = await rig.store.refusals()
    return any(r["workflow_id"] == workflow_id and r["handler"] == handler for r in rows)
