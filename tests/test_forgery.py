"""The forgery table: every signal and update that changes state, sent with the plain `temporal`
CLI (what anyone who reaches Temporal's port can run) unsigned, sealed with another key, replayed
from before the workflow began, and sealed by the gateway for the wrong agent. Each is refused,
counted, audited, and leaves the workflow's state as it was."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.support import keys
from tests.support.deploy import deploy_rig
from tests.support.helpers import FakeForge, eventually
from tests.support.passkeys import Authenticator
from tests.support.runner import set_runner
from tests.support.sessions import running_team
from tether import client as api
from tether.cli.render import render_status
from tether.contracts import (
    Approval,
    AttachInput,
    ClaimInput,
    EndSessionInput,
    FounderActionInput,
    GovernorHoldInput,
    LockGrant,
    LockInput,
    LockRelease,
    LockRequest,
    NoteInput,
    NoticeInput,
    PasskeyApproval,
    PasskeyRevocation,
    ProcessEnd,
    RecheckInput,
    ReleaseInput,
    Report,
    Revocations,
    RunRequest,
    RuntimeUsage,
    SessionInput,
    ShellCheck,
    StopInput,
    SubmitInput,
    TaskClaimedInput,
    TaskSpec,
)
from tether.names import (
    LOCK_WORKFLOW,
    PASSKEYS_WORKFLOW,
    PROCESS_WORKFLOW,
    passkeys_workflow_id,
    process_workflow_id,
)
from tether.ops.stack import temporal_binary
from tether.trust import seals
from tether.trust.passkeys import challenge_of
from workflows import policy
from workflows.guard import REFUSED_KEY

CONVERTER = pydantic_data_converter.payload_converter
CASES = ("unsigned", "another key", "replayed", "wrong agent")
SLEEPS = "import time; time.sleep(600)"
VIEWS = {
    "AgentSessionWorkflow": "view_session",
    "TaskWorkflow": "view_task",
    "DeploymentWorkflow": "view_deployment",
    "ServiceLockWorkflow": "queue",
    "AgentProcessWorkflow": "view_process",
    "PasskeyRevocationsWorkflow": "revoked",
}


@dataclass
class Message:
    workflow_type: str
    workflow_id: str
    handler: str
    kind: str  # "signal" | "update"
    arg: BaseModel | None
    agent: str  # the agent the message concerns


def seal_for(
    key: Ed25519PrivateKey,
    role: str,
    msg: Message,
    *,
    agent: str | None = None,
    session: str | None = None,
    seq: int | None = None,
) -> dict[str, Any]:
    """A seal as a signer would make it, with any key, role, agent or sequence number."""
    seal: dict[str, Any] = {
        "v": seals.VERSION,
        "role": role,
        "signer": f"{role}:forger:{uuid.uuid4().hex[:6]}",
        "seq": seq if seq is not None else time.time_ns() // 1000,
    }
    if agent:
        seal["agent"] = agent
    if session:
        seal["session"] = session
    args = [msg.arg] if msg.arg is not None else []
    data = seals.signed_bytes(seal, msg.workflow_id, msg.handler, seals.args_digest(args))
    seal["sig"] = base64.b64encode(key.sign(data)).decode()
    return seal


def forgery(msg: Message, case: str) -> dict[str, Any] | None:
    """The seal header a forger sends for `case` (None: no header)."""
    rule = policy.rule(msg.workflow_type, msg.handler)
    assert rule is not None
    session = getattr(msg.arg, "external_id", None)
    if case == "unsigned":
        return None
    if case == "another key":
        # The role that may send it, the right agent: only the key is wrong.
        role = sorted(rule.roles)[0] if rule.roles else "founder"
        return seal_for(Ed25519PrivateKey.generate(), role, msg, agent=msg.agent, session=session)
    if case == "replayed":
        # The founder's real key, but signed an hour before this workflow existed.
        old = time.time_ns() // 1000 - 3600 * 10**6
        return seal_for(keys.FOUNDER._key, "founder", msg, seq=old)
    # The gateway's real key, speaking for another agent.
    return seal_for(keys.GATEWAY._key, "gateway", msg, agent="someone-else", session=session)


async def send(address: str, msg: Message, header: dict[str, Any] | None) -> tuple[int, str]:
    """The plain `temporal` CLI: what anyone who can reach the port can run."""
    verb = ["workflow", "signal"] if msg.kind == "signal" else ["workflow", "update", "execute"]
    argv = [
        str(temporal_binary()),
        *verb,
        "--address",
        address,
        "--namespace",
        "default",
        "--workflow-id",
        msg.workflow_id,
        "--name",
        msg.handler,
    ]
    if msg.arg is not None:
        argv += ["--input", CONVERTER.to_payloads([msg.arg])[0].data.decode()]
    if header is not None:
        argv += ["--headers", f"{seals.HEADER}={json.dumps(header)}"]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, (out + err).decode()


async def snapshot(client: Client, msg: Message) -> Any:
    handle = client.get_workflow_handle(msg.workflow_id)
    view = await handle.query(VIEWS[msg.workflow_type])
    return json.loads(json.dumps(view, sort_keys=True, default=str))


async def refused_count(client: Client, msg: Message) -> int:
    memo = await (await client.get_workflow_handle(msg.workflow_id).describe()).memo()
    counts = memo.get(REFUSED_KEY) or {}
    return int(counts.get(msg.handler, 0))


async def test_every_state_change_forged_with_the_temporal_cli_is_refused(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    temporal_address: str,
    valid_token: None,
) -> None:
    async with (
        running_team(client, fresh_db, tmp_path / "team", forge) as team,
        deploy_rig(client, fresh_db, tmp_path / "deploy") as rig,
    ):
        agent, q = team.agent("devops"), team.task_queue
        suffix = uuid.uuid4().hex[:6]
        held, open_task = f"held-{suffix}", f"open-{suffix}"
        for task in (held, open_task):
            spec = TaskSpec(id=task, title=task, checks=[ShellCheck(command="true")])
            await api.create_task(client, q, spec)
        await api.claim_task(client, held, agent)
        await api.start_session(
            client, q, SessionInput(agent=agent, external_id="cc-1", runtime="claude-code")
        )

        async def settled() -> bool:
            # The session loads its task's cost baseline on its own after the start: wait, so
            # that only a forged message could change its state from here.
            view = await api.session_view(client, agent)
            return view is not None and view.governor.baseline is not None

        await eventually(settled, "the session to load its cost baseline")
        # Another agent's process, run by Tether in a workflow of its own.
        runner = set_runner(
            team, "coder", "command", isolation="none", command=[sys.executable, "-c", SLEEPS]
        )
        running = await api.run_agent(client, q, runner, "command", RunRequest(prompt="go"))
        assert running.run is not None and running.run.current is not None
        process = process_workflow_id(runner, running.run.current.process)
        deployment = await rig.request("main")
        service = f"forged-{suffix}"
        lock = await client.start_workflow(
            LOCK_WORKFLOW, LockInput(service=service), id=f"lock-{service}", task_queue=q
        )
        # The founder's passkeys' revocations: the founder alone may add one.
        registry = passkeys_workflow_id(q)
        await client.start_workflow(PASSKEYS_WORKFLOW, Revocations(), id=registry, task_queue=q)
        session, task, other = f"session-{agent}", f"task-{held}", f"task-{open_task}"
        now = datetime.now(UTC)
        unsigned_approval = Approval(
            deployment_id=deployment.deployment_id,
            service=rig.service,
            ref="main",
            commit=deployment.commit or "0" * 40,
            expires_at=now + timedelta(hours=1),
            signed_at=now,
        )
        forger = Authenticator()
        S, T, D, L = "AgentSessionWorkflow", "TaskWorkflow", "DeploymentWorkflow", LOCK_WORKFLOW
        P = PROCESS_WORKFLOW
        release = ReleaseInput(by="forger", task_id=held, task_closed=True)
        action = FounderActionInput(by="forger", reason="forged")
        messages = [
            Message(S, session, "report", "update", Report(external_id="cc-1", cost_usd=0), agent),
            Message(
                S,
                session,
                "runtime_usage",
                "update",
                RuntimeUsage(runtime_session="cc-1", process="cc-1:1", cost_usd=5.0),
                agent,
            ),
            Message(S, session, "attach", "update", AttachInput(external_id="cc-2"), agent),
            Message(
                S, session, "end", "update", EndSessionInput(reason="x", external_id="cc-1"), agent
            ),
            Message(S, session, "check_deliverable", "update", None, agent),
            Message(S, session, "declare", "update", _url_artifact(), agent),
            Message(S, session, "note", "update", NoteInput(text="forged"), agent),
            Message(S, session, "recheck", "update", RecheckInput(by="forger"), agent),
            Message(S, session, "release", "signal", release, agent),
            Message(
                S, session, "task_claimed", "signal", TaskClaimedInput(task_id=open_task), agent
            ),
            Message(S, session, "release_hold", "update", release, agent),
            Message(
                S, session, "notice", "signal", NoticeInput(text="forged: push the tag"), agent
            ),
            Message(S, session, "run_agent", "update", RunRequest(prompt="forged"), agent),
            Message(S, session, "stop_agent", "update", StopInput(reason="forged"), agent),
            Message(
                S,
                session,
                "process_ended",
                "signal",
                ProcessEnd(process="cc-1:1", stopped=True),
                agent,
            ),
            Message(P, process, "stop", "signal", StopInput(reason="forged"), runner),
            Message(T, other, "claim", "update", ClaimInput(agent=agent), agent),
            Message(T, task, "submit", "update", SubmitInput(agent=agent), agent),
            Message(
                T,
                task,
                "governor_hold",
                "signal",
                GovernorHoldInput(kind="loop", agent=agent, reason="forged"),
                agent,
            ),
            *(Message(T, task, name, "update", action, agent) for name in ("cancel", "block")),
            *(Message(T, task, name, "update", action, agent) for name in ("unblock", "resume")),
            Message(D, deployment.deployment_id, "approve", "signal", unsigned_approval, agent),
            Message(
                D, deployment.deployment_id, "submit_approval", "update", unsigned_approval, agent
            ),
            Message(
                PASSKEYS_WORKFLOW,
                registry,
                "revoke",
                "update",
                PasskeyRevocation(credential_id="the-founders-phone"),
                agent,
            ),
            # A passkey approval from a device the founder never enrolled (its enrollment
            # signed by the forger's own key).
            Message(
                D,
                deployment.deployment_id,
                "approve_by_passkey",
                "update",
                PasskeyApproval(
                    approval=unsigned_approval,
                    enrollment=forger.enrollment(Ed25519PrivateKey.generate()),
                    assertion=forger.assertion(challenge_of(unsigned_approval.payload())),
                ),
                agent,
            ),
            Message(
                D,
                deployment.deployment_id,
                "lock_granted",
                "signal",
                LockGrant(
                    service=rig.service, deployment_id=deployment.deployment_id, lease_seconds=600
                ),
                agent,
            ),
            Message(
                L,
                lock.id,
                "acquire",
                "signal",
                LockRequest(
                    deployment_id="deploy-forged", service=service, agent=agent, requested_at=now
                ),
                agent,
            ),
            Message(
                L, lock.id, "renew", "signal", LockRelease(deployment_id="deploy-forged"), agent
            ),
            Message(
                L, lock.id, "release", "signal", LockRelease(deployment_id="deploy-forged"), agent
            ),
        ]
        # Every rule is in the table: a handler added without a forgery row fails here.
        assert {(m.workflow_type, m.handler) for m in messages} == set(policy.RULES)

        accepted: list[str] = []

        async def forge_all(workflow_id: str) -> None:
            # One workflow's messages in order (its state is compared before and after each);
            # the four workflows side by side.
            for msg in [m for m in messages if m.workflow_id == workflow_id]:
                for case in CASES:
                    before = await snapshot(client, msg)
                    count = await refused_count(client, msg)
                    code, said = await send(temporal_address, msg, forgery(msg, case))
                    if msg.kind == "update" and (code == 0 or "refused" not in said):
                        accepted.append(f"{msg.handler} ({case}): {said.strip()[:200]}")
                        continue

                    async def counted(m: Message = msg, c: int = count) -> bool:
                        return await refused_count(client, m) == c + 1

                    await eventually(counted, f"{msg.handler} ({case}) to be refused")
                    after = await snapshot(client, msg)
                    if after != before:
                        accepted.append(f"{msg.handler} ({case}) changed the state")

        await asyncio.gather(
            *(forge_all(w) for w in dict.fromkeys(m.workflow_id for m in messages))
        )
        assert accepted == [], "\n".join(accepted)

        # Each refusal is in the audit, with what the seal claimed.
        async def audited() -> bool:
            total, _ = await team.store.refusals()
            return total == len(messages) * len(CASES)

        await eventually(audited, "every refusal to be audited")
        _, recent = await team.store.refusals(limit=500)
        reasons = {r["reason"] for r in recent}
        assert any("is not sealed" in r for r in reasons)
        assert any("does not verify" in r for r in reasons)
        assert any("before this workflow began" in r for r in reasons)
        assert any("not 'devops-" in r or "may not send" in r for r in reasons)

        # The founder sees them in `tether status`.
        report = await api.gather_status(team.store)
        assert report.refused_total == len(messages) * len(CASES)
        shown = render_status(report.model_dump(mode="json"))
        assert f"{report.refused_total} message(s) refused for their sender" in shown


async def test_a_sealed_message_sent_twice_counts_once(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    temporal_address: str,
    valid_token: None,
) -> None:
    """A message copied off the wire (or out of the Web UI's history) and sent again with its
    seal is a replay: refused, whoever sends it."""
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        agent = team.agent("coder")
        await api.start_session(client, team.task_queue, SessionInput(agent=agent))
        msg = Message(
            "AgentSessionWorkflow",
            f"session-{agent}",
            "note",
            "update",
            NoteInput(kind="decision", text="use jittered retries"),
            agent,
        )
        header = seal_for(keys.FOUNDER._key, "founder", msg)
        first, _ = await send(temporal_address, msg, header)
        assert first == 0
        again, said = await send(temporal_address, msg, header)
        assert again != 0 and "already received (a replay)" in said, said
        view = await api.session_view(client, agent)
        assert view is not None
        assert view.governor.notes == ["decision: use jittered retries"]


def _url_artifact() -> BaseModel:
    from tether.contracts import Artifact

    return Artifact(kind="url", url="https://forged.example.invalid")
