"""The activity classes one at a time (ActivityEnvironment): real processes, git and PostgreSQL,
no worker and no workflow. What the workflows rely on each activity to do, and to refuse."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.deploy import DeployActivities
from activities.founder import FounderActivities
from activities.sessions import SessionActivities
from tests.support.helpers import commit_file, eventually, make_repo
from tether import errors
from tether.config import TetherConfig
from tether.contracts import (
    Approval,
    DeployRequest,
    JudgeInput,
    JudgeOrderInput,
    ProbeInput,
    RolloutInput,
)
from tether.store import Store
from tether.trust.signing import generate, load_private, order, sign


def service_config(
    tmp_path: Path, rollout: str, public: str | None = None, signed_tags: bool = True
) -> TetherConfig:
    repo = make_repo(tmp_path / "app")
    commit_file(repo, "app.py", "VERSION = 1\n", "v1")
    return TetherConfig.model_validate(
        {
            "repositories": {"app": {"path": str(repo)}},
            "agents": [{"name": "devops"}],
            "founder": {"public_key": public},
            "services": {
                "api": {"repository": "app", "rollout": rollout, "signed_tags": signed_tags}
            },
        }
    )


def rollout_input(step: str = "rollout", timeout: float = 30) -> RolloutInput:
    return RolloutInput(
        deployment_id=f"deploy-api-{uuid.uuid4().hex[:6]}",
        service="api",
        ref="main",
        commit="0" * 40,
        step=step,  # type: ignore[arg-type]
        timeout_seconds=timeout,
    )


async def test_a_cancelled_rollout_stops_everything_its_command_started(
    store: Store, tmp_path: Path
) -> None:
    started, marker = tmp_path / "started", tmp_path / "survived"
    # The grandchild would write the marker 2 s later if cancelling stopped only the shell.
    rollout = f"touch {started}; (sleep 2; touch {marker}) & sleep 60"
    activities = DeployActivities(store, service_config(tmp_path, rollout))
    env = ActivityEnvironment()
    running = asyncio.create_task(env.run(activities.run_step, rollout_input()))
    await eventually(started.exists, "the rollout command to start")
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await asyncio.sleep(2.5)
    assert not marker.exists()


async def test_a_rollout_sees_its_deployment_and_reports_its_outcome(
    store: Store, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.json"
    script = tmp_path / "dump.py"
    script.write_text(
        "import json, os\n"
        "print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('TETHER_')}))\n"
    )
    rollout = f"{sys.executable} {script} > {seen}; echo rolled {{commit}}; exit 3"
    activities = DeployActivities(store, service_config(tmp_path, rollout))
    inp = rollout_input()
    result = await ActivityEnvironment().run(activities.run_step, inp)
    assert not result.ok and result.exit_code == 3
    assert result.summary == "rollout failed with exit code 3"
    assert f"rolled {inp.commit}" in result.output_excerpt
    # The step's own variables, beside the worker's (the suite's TETHER_WORKFLOW_SANDBOX).
    told = {k: v for k, v in json.loads(seen.read_text()).items() if k not in os.environ}
    assert told == {
        "TETHER_SERVICE": "api",
        "TETHER_REF": "main",
        "TETHER_COMMIT": inp.commit,
        "TETHER_DEPLOYMENT": inp.deployment_id,
        "TETHER_ENVIRONMENT": "staging",
        "TETHER_TAG": "main",  # no founder's tag in this input: the ref
    }
    # A step with no command configured is a success that says so.
    nothing = await ActivityEnvironment().run(activities.run_step, rollout_input("rollback"))
    assert nothing.ok and nothing.summary == "no rollback command configured"
    # Past its time limit the rollout is stopped and reported as timed out.
    slow = DeployActivities(store, service_config(tmp_path / "slow", "sleep 30"))
    timed = await ActivityEnvironment().run(slow.run_step, rollout_input(timeout=0.5))
    assert not timed.ok and timed.summary == "rollout timed out after 0.5s"


async def test_bad_deploy_input_is_a_final_error_that_says_what_to_fix(
    store: Store, tmp_path: Path
) -> None:
    activities = DeployActivities(store, service_config(tmp_path, "deploy {version}"))
    env = ActivityEnvironment()
    with pytest.raises(ApplicationError) as template:
        await env.run(activities.run_step, rollout_input())
    assert template.value.non_retryable and template.value.type == errors.INVALID_INPUT
    assert "services.api.rollout" in str(template.value) and "'version'" in str(template.value)

    with pytest.raises(
        ApplicationError, match=r"service 'web' is not in tether.toml \(services: api\)"
    ):
        await env.run(
            activities.deploy_plan, DeployRequest(service="web", ref="main", agent="devops")
        )
    with pytest.raises(ApplicationError, match="ref 'nope' is not a commit, tag or branch") as ref:
        await env.run(
            activities.deploy_plan, DeployRequest(service="api", ref="nope", agent="devops")
        )
    assert ref.value.non_retryable
    plan = await env.run(
        activities.deploy_plan, DeployRequest(service="api", ref="main", agent="devops")
    )
    assert len(plan.commit) == 40 and plan.repository == "app"


async def test_every_approval_verdict_is_judged_against_the_key_and_audited(
    store: Store, tmp_path: Path
) -> None:
    key_path, public = generate(tmp_path / "home")
    # The approval's signature alone (its tag is tests/test_staging_tags.py's).
    config = service_config(tmp_path, "true", public, signed_tags=False)
    activities = DeployActivities(store, config)
    now = datetime.now(UTC)
    deployment = f"deploy-api-{uuid.uuid4().hex[:6]}"
    approval = Approval(
        deployment_id=deployment,
        service="api",
        ref="main",
        commit="a" * 40,
        expires_at=now + timedelta(minutes=10),
        signed_at=now,
    )

    async def judge(received: Approval) -> tuple[bool, str]:
        inp = JudgeInput(
            deployment_id=deployment,
            service="api",
            ref="main",
            commit="a" * 40,
            received=received,
            received_at=now,
        )
        verdict = await ActivityEnvironment().run(activities.judge_approval, inp)
        return verdict.accepted, verdict.reason

    key = load_private(key_path)
    other_key = load_private(generate(tmp_path / "other")[0])
    assert await judge(approval) == (False, "the approval is not signed")
    assert await judge(sign(approval, other_key)) == (
        False,
        "the signature does not verify with the founder's public key",
    )
    moved = sign(approval.model_copy(update={"commit": "b" * 40}), key)
    assert (await judge(moved))[1].startswith("the signed approval is for another deployment")
    assert await judge(sign(approval, key)) == (True, "signed by the founder's key")
    trail = await store.audit_trail(deployment_id=deployment)
    assert [(r["kind"], r["actor"]) for r in trail] == [
        ("approval_refused", "unverified"),
        ("approval_refused", "unverified"),
        ("approval_refused", "unverified"),
        ("approval_accepted", "founder"),
    ]


async def test_a_founder_order_lifts_a_hold_only_when_signed_for_that_subject(
    store: Store, tmp_path: Path
) -> None:
    key_path, public = generate(tmp_path / "home")
    activities = FounderActivities(store, service_config(tmp_path, "true", public))
    subject = f"task-{uuid.uuid4().hex[:6]}"

    async def judge(received: object) -> tuple[bool, str]:
        inp = JudgeOrderInput(
            received=received,  # type: ignore[arg-type]
            actions=["unblock"],
            subject=subject,
            judged_for=f"task {subject}",
            at=datetime.now(UTC),
        )
        verdict = await ActivityEnvironment().run(activities.judge_order, inp)
        return verdict.accepted, verdict.reason

    key = load_private(key_path)
    accepted, _ = await judge(None)
    assert not accepted
    wrong_subject, reason = await judge(order("unblock", "task-other", "founder", "", key))
    assert not wrong_subject and "task-other" in reason
    wrong_action, reason = await judge(order("cancel", subject, "founder", "", key))
    assert not wrong_action and "cancel" in reason
    assert (await judge(order("unblock", subject, "founder", "worth it", key)))[0]
    logged = await store.founder_orders(subject)
    assert [r["accepted"] for r in logged] == [False, False, False, True]


async def test_an_unknown_agent_or_credential_is_named_in_the_answer(
    store: Store, tmp_path: Path
) -> None:
    activities = SessionActivities(store, service_config(tmp_path, "true"))
    env = ActivityEnvironment()
    setup = await env.run(activities.session_setup, "ghost")
    assert not setup.known
    assert setup.problem == (
        "agent ghost is not in tether.toml (agents: devops); add it under [[agents]] and "
        "restart the worker"
    )
    known = await env.run(activities.session_setup, "devops")
    assert known.known and known.credentials == []
    # tether.toml refuses an agent naming an undefined credential; the probe still answers.
    statuses = await env.run(
        activities.probe_credentials, ProbeInput(agent="devops", credentials=["vault"])
    )
    assert [(s.name, s.ok, s.reason) for s in statuses] == [
        ("vault", False, "is not defined in tether.toml")
    ]
