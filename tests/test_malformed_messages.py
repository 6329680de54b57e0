"""No message jams a workflow: every malformed form of every signal and update, sent with the
plain `temporal` CLI (as anyone who reaches Temporal can), leaves every workflow answering."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.client import Client, WorkflowHandle

from tests.support.deploy import deploy_rig
from tests.support.helpers import FakeForge, eventually
from tests.support.sessions import running_team
from tether import client as api
from tether.contracts import SessionInput, ShellCheck, TaskSpec
from tether.ops.stack import temporal_binary
from workflows.deployment import DeploymentWorkflow
from workflows.guard import MEMO_KEY
from workflows.lock import ServiceLockWorkflow
from workflows.session import AgentSessionWorkflow
from workflows.task import TaskWorkflow

# No input, one too many, a bare number, an object of the wrong shape.
FORMS: dict[str, list[str]] = {
    "no input": [],
    "two inputs": ["{}", "{}"],
    "a number": ["42"],
    "wrong shape": ['{"nope": 1}'],
}


async def _send(address: str, kind: str, workflow_id: str, name: str, inputs: list[str]) -> int:
    verb = ["workflow", "signal"] if kind == "signal" else ["workflow", "update", "execute"]
    argv = [temporal_binary(), *verb, "--address", address, "--workflow-id", workflow_id]
    argv += ["--name", name]
    for value in inputs:
        argv += ["--input", value]
    for _ in range(20):
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode is not None
        # A run that is continuing as new refuses messages for a moment: send again.
        if b"workflow is closing" not in err:
            break
        await asyncio.sleep(0.2)
    # A signal is accepted whatever it carries; an update may be refused.
    assert kind == "update" or proc.returncode == 0, (workflow_id, name, inputs, err.decode())
    return proc.returncode


async def _healthy(handle: WorkflowHandle[Any, Any], query: str) -> None:
    """The workflow answers a query, and no workflow task of it is failing."""
    await handle.query(query)
    described = await handle.describe()
    pending = described.raw_description.pending_workflow_task
    assert pending.attempt <= 1, f"{handle.id}: workflow task attempt {pending.attempt}"


async def test_no_malformed_signal_or_update_jams_any_workflow(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    temporal_address: str,
    valid_token: None,
) -> None:
    async with (
        running_team(client, fresh_db, tmp_path / "team", forge) as team,
        deploy_rig(client, fresh_db, tmp_path / "deploy", cooldown_minutes=0, pause=60) as rig,
    ):
        task_id = f"jam-{uuid.uuid4().hex[:8]}"
        spec = TaskSpec(id=task_id, title="t", checks=[ShellCheck(command="true")])
        await api.create_task(client, team.task_queue, spec)
        agent = team.agent("devops")
        await api.start_session(client, team.task_queue, SessionInput(agent=agent))
        deployment = await rig.request("main")
        rolling = await rig.request("main", agent="coder")
        await rig.approve(rolling)
        await eventually(rig.rollout_started, "the rollout holding the lock")
        targets: list[tuple[type, str, str]] = [
            (TaskWorkflow, f"task-{task_id}", "view_task"),
            (AgentSessionWorkflow, f"session-{agent}", "view_session"),
            (DeploymentWorkflow, deployment.deployment_id, "view_deployment"),
            (ServiceLockWorkflow, f"lock-{rig.service}", "queue"),
        ]
        sends = []
        for cls, workflow_id, _ in targets:
            definition = workflow._Definition.must_from_class(cls)
            for kind, table in (("signal", definition.signals), ("update", definition.updates)):
                for name in sorted(n for n in table if n):
                    for inputs in FORMS.values():
                        sends.append((kind, workflow_id, name, inputs))
        gate = asyncio.Semaphore(8)

        async def send(kind: str, workflow_id: str, name: str, inputs: list[str]) -> None:
            async with gate:
                await _send(temporal_address, kind, workflow_id, name, inputs)

        # Signals first, then updates: a workflow task whose updates are all rejected is
        # discarded by the server (speculative), and the memo written in it with it.
        await asyncio.gather(*(send(*s) for s in sends if s[0] == "signal"))
        await asyncio.gather(*(send(*s) for s in sends if s[0] == "update"))
        assert len(sends) >= 100
        for _, workflow_id, query in targets:
            await _healthy(client.get_workflow_handle(workflow_id), query)

        # The dropped signals are counted in the workflow's memo, per signal name: the ones
        # with the wrong number of inputs (the SDK drops what does not decode, and logs it).
        async def dropped(workflow_id: str) -> dict[str, int]:
            """Each signal's count, from the memos of the workflow's runs. The count travels
            across continue-as-new; drops that land while a run is closing stay in its own
            memo (the run was already told how to continue), so the highest count counts."""
            found: dict[str, int] = {}
            async for run in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
                memo = await run.memo()
                for name, n in (memo.get(MEMO_KEY) or {}).items():
                    found[name] = max(found.get(name, 0), n)
            return found

        async def counted(workflow_id: str, counts: dict[str, int]) -> bool:
            # Two drops per signal; when a drop lands while a run is already continuing as new,
            # the next run starts without it, so a run may show one of the two.
            found = await dropped(workflow_id)
            return set(found) == set(counts) and all(1 <= found[k] <= counts[k] for k in counts)

        for workflow_id, counts in (
            (f"task-{task_id}", {"governor_hold": 2}),
            (f"lock-{rig.service}", {"acquire": 2, "release": 2, "renew": 2}),
            (
                f"session-{agent}",
                {"notice": 2, "process_ended": 2, "release": 2, "task_claimed": 2},
            ),
            # `approve` (what the Web UI's pasted approval sends) is decoded by the guard: each
            # of its four malformed forms is refused and audited instead (below).
            (deployment.deployment_id, {"lock_granted": 2}),
        ):
            await eventually(
                lambda w=workflow_id, c=counts: counted(w, c), f"{workflow_id}'s dropped count"
            )

        async def approvals_refused() -> bool:
            memo = await (
                await client.get_workflow_handle(deployment.deployment_id).describe()
            ).memo()
            return (memo.get("tether_refused") or {}).get("approve") == len(FORMS)

        await eventually(approvals_refused, "the four malformed approvals refused")
        _, rows = await rig.store.refusals(limit=100)
        said = [r["reason"] for r in rows if r["workflow_id"] == deployment.deployment_id]
        assert sorted(said) == sorted(
            [
                "it is not an Approval: it has 0 arguments, not one",
                "it is not an Approval: it has 2 arguments, not one",
                *[r for r in said if r.startswith("it is not an Approval (")],
            ]
        ) and len(said) == len(FORMS), said

        # And they still work: the task is claimed, the session reports, the rollout ends.
        claimed = await api.claim_task(client, task_id, agent)
        assert claimed.assignee == agent
        view = await api.session_view(client, agent)
        assert view is not None and view.state.value == "active"
        await client.get_workflow_handle(rolling.deployment_id).cancel()
        await client.get_workflow_handle(deployment.deployment_id).cancel()
        print(json.dumps({"messages sent": len(sends)}))
