"""Deployment gates end to end: a real service on 127.0.0.1 whose version the rollout command
changes, real git history, the founder's real Ed25519 key, the dev server and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client

from tests.deploy_support import deploy_rig
from tests.helpers import commit_file, git
from tether import api
from tether.contracts import DeployState
from tether.stack import temporal_binary


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
            "queued", "approval_accepted", "lock_requested", "rollout_started",
            "rollout_finished", "health_passed", "done", "lock_released",
        ]  # fmt: skip
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
        expired = rig.approval(view, ttl=timedelta(minutes=5),
                               now=datetime.now(UTC) - timedelta(hours=1))  # fmt: skip
        # The plain Temporal CLI: anyone with access to the namespace can send a signal.
        for body in (unsigned, forged, {"approve": "yes please"}):
            proc = await asyncio.create_subprocess_exec(
                str(temporal_binary()), "workflow", "signal", "--address", temporal_address,
                "--workflow-id", view.deployment_id, "--name", "approve",
                "--input", json.dumps(body), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
            assert proc.returncode == 0, err
        verdict = await api.submit_approval(client, view.deployment_id, other_commit)
        assert not verdict.accepted and "for another deployment: commit" in verdict.reason
        verdict = await api.submit_approval(client, view.deployment_id, expired)
        assert not verdict.accepted and verdict.reason.startswith("the approval expired at")

        async def refusals() -> list[str]:
            rows = await rig.store.audit_trail(deployment_id=view.deployment_id)
            return [r["detail"]["reason"] for r in rows if r["kind"] == "approval_refused"]

        for _ in range(100):
            if len(await refusals()) == 5:
                break
            await asyncio.sleep(0.1)
        reasons = await refusals()
        assert len(reasons) == 5, reasons
        assert "the approval is not signed" in reasons
        assert "the signature does not verify with the founder's public key" in reasons
        assert any(r.startswith("not an approval (") for r in reasons)
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
        items = {i.kind for i in await rig.store.inbox()}
        assert {"deploy_approval", "deploy_refused"} <= items
