"""The approval is a founder-signed tag: `staging/<service>/<n>`, annotated, signed with the
founder's key in git's SSH format and pushed to the service's repository. A deployment rolls out
only from a tag `git verify-tag` accepts against the founder's key, and only while it still
points at the approved commit. Real repositories with a bare remote, real git and ssh-keygen."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client

from tests.support.deploy import Rig, deploy_rig
from tests.support.helpers import commit_file, git
from tether import client as api
from tether.contracts import DeployState, DeployView
from tether.trust import tags


def git_in(repo: Path, *args: str) -> str:
    return git(repo, *args)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


async def refusals(rig: Rig) -> list[tuple[str, str]]:
    rows = await rig.store.audit_trail(service=rig.service)
    return [(r["actor"], r["detail"]["reason"]) for r in rows if r["kind"] == "tag_refused"]


def agent_clone(rig: Rig, tmp_path: Path) -> Path:
    return rig.agent_clone(tmp_path / "agent-clone")


async def test_the_founders_tag_verifies_deploys_and_git_agrees(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    async with deploy_rig(client, fresh_db, tmp_path) as rig:
        view = await rig.request("main")
        verdict = await rig.approve(view)
        assert verdict.accepted, verdict.reason
        tag = verdict.approval.tag if verdict.approval else None
        assert tag == f"staging/{rig.service}/1"
        assert "with the founder's tag" in verdict.reason
        assert (await rig.finish(view)).state == DeployState.DONE
        # On the shared remote, as a deploy pipeline sees it; `git verify-tag` by hand agrees.
        remote = Path(git_in(rig.repo, "remote", "get-url", "origin"))
        listed = run("git", "-C", str(remote), "tag", "--list", "staging/*").stdout.split()
        assert listed == [tag]
        signers = tmp_path / "allowed_signers"
        signers.write_text(tags.allowed_signers(rig.key.public_key()))
        allowed = f"gpg.ssh.allowedSignersFile={signers}"
        checked = run("git", "-C", str(remote), "-c", allowed, "verify-tag", tag)
        assert checked.returncode == 0, checked.stderr
        assert 'Good "git" signature for founder' in checked.stderr
        # The next approval gets the next number.
        again = await rig.request("main")
        assert (await rig.approve(again)).approval.tag == f"staging/{rig.service}/2"  # type: ignore[union-attr]


async def test_tags_that_are_not_the_founders_are_refused_and_audited(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    async with deploy_rig(client, fresh_db, tmp_path) as rig:
        view = await rig.request("main")
        assert view.commit is not None
        clone = agent_clone(rig, tmp_path)
        service = rig.service

        def pushed(tag: str, *how: str) -> str:
            git_in(clone, "tag", *how, tag, view.commit or "")
            git_in(clone, "push", "-q", "origin", f"refs/tags/{tag}")
            return tag

        # An agent's annotated tag, unsigned; a lightweight one; one signed with another key.
        unsigned = pushed(f"staging/{service}/7", "-a", "-m", "ship it")
        light = pushed(f"staging/{service}/8")
        forged = f"staging/{service}/9"
        tags.create_signed_tag(
            clone, forged, view.commit, "ship it", Ed25519PrivateKey.generate(), "devops"
        )
        git_in(clone, "push", "-q", "origin", f"refs/tags/{forged}")
        expected = {
            unsigned: f"{unsigned} is not signed",
            light: "is a lightweight tag",
            forged: "is not signed with the founder's key",
            f"production/{service}/1": "is not a staging tag",
        }
        for tag, why in expected.items():
            # The founder's own signed approval, naming a tag that is not the founder's.
            verdict = await rig.approve(view, tag=tag)
            assert not verdict.accepted and why in verdict.reason, verdict.reason
        audited = await refusals(rig)
        assert len(audited) == 4
        # Who made the agent's tag is in the audit.
        assert audited[0][0].startswith("Test Agent <agent@example.invalid>")
        still = await api.deploy_view(client, view.deployment_id)
        assert still.state == DeployState.QUEUED and still.approval is None
        assert not rig.rollouts()
        # The founder's own tag still works afterwards.
        assert (await rig.approve(view)).accepted
        assert (await rig.finish(view)).state == DeployState.DONE


async def test_a_tag_moved_after_the_approval_stops_the_rollout(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    async with deploy_rig(client, fresh_db, tmp_path, cooldown_minutes=0, pause=3) as rig:
        first = await rig.request("main")
        assert (await rig.approve(first)).accepted
        second = await rig.request("main", agent="coder")
        verdict = await rig.approve(second)
        assert verdict.accepted and verdict.approval is not None
        tag = verdict.approval.tag
        assert tag is not None
        # While the second waits for the lock, someone moves its tag to another commit.
        clone = agent_clone(rig, tmp_path)
        elsewhere = commit_file(clone, "evil.py", "x = 1\n", "not what was approved")
        git_in(clone, "fetch", "-q", "origin", f"+refs/tags/{tag}:refs/tags/{tag}")
        git_in(clone, "tag", "-f", "-a", "-m", "moved", tag, elsewhere)
        git_in(clone, "push", "-q", "-f", "origin", f"refs/tags/{tag}")
        assert (await rig.finish(first)).state == DeployState.DONE
        ended: DeployView = await rig.finish(second)
        assert ended.state == DeployState.REFUSED
        assert "the approval's tag no longer holds" in (ended.reason or "")
        assert len(rig.rollouts()) == 1  # only the first rolled out
        assert any(tag in why for _, why in await refusals(rig))


async def test_the_watch_finds_an_agents_tag_no_deployment_names(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    """Pushed to the shared remote, an agent's staging tag is in the founder's inbox at the
    next round of the watch (the credential watch's schedule), once."""
    async with deploy_rig(client, fresh_db, tmp_path) as rig:
        view = await rig.request("main")
        assert (await rig.approve(view)).accepted  # the founder's tag, staging/<service>/1
        assert (await rig.finish(view)).state == DeployState.DONE
        clone = agent_clone(rig, tmp_path)
        rogue = f"staging/{rig.service}/2"
        git_in(clone, "tag", "-a", "-m", "hotfix, trust me", rogue, view.commit or "")
        git_in(clone, "push", "-q", "origin", f"refs/tags/{rogue}")

        async def watch() -> list[str]:
            posted: list[str] = await client.execute_workflow(
                "CredentialWatchWorkflow",
                id=f"watch-{uuid.uuid4().hex[:8]}",
                task_queue=rig.task_queue,
                result_type=list[str],
            )
            return posted

        assert await watch() == [f"tag:{rogue}"]
        items = [i for i in await rig.store.inbox() if i.kind == "tag_refused"]
        assert len(items) == 1 and rogue in items[0].title and "is not signed" in items[0].title
        assert items[0].detail["made_by"] == "Test Agent <agent@example.invalid>"
        assert await watch() == []  # once
