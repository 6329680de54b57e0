"""Deployments from the client: request (update-with-start), approve with a signed approval,
read the queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
)
from temporalio.common import (
    WorkflowIDConflictPolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from tether import constants
from tether.client.calls import Refused, ask
from tether.config import validation_problems
from tether.contracts import (
    DEPLOY_FINAL,
    Approval,
    ApprovalVerdict,
    DeployInput,
    DeployRequest,
    DeployView,
    LockView,
    PasskeyApproval,
    PasskeyRevocation,
    Revocations,
)
from tether.errors import TetherError
from tether.names import passkeys_workflow_id
from tether.trust import tags
from workflows.deployment import DeploymentWorkflow
from workflows.lock import ServiceLockWorkflow
from workflows.passkeys import PasskeyRevocationsWorkflow


def new_deployment_id(service: str) -> str:
    return f"{constants.DEPLOY_WORKFLOW_ID_PREFIX}{service}-{uuid.uuid4().hex[:8]}"


def _deploy_handle(
    client: Client, deployment_id: str
) -> WorkflowHandle[DeploymentWorkflow, DeployView]:
    return client.get_workflow_handle_for(DeploymentWorkflow.run, deployment_id)


async def request_deploy(client: Client, task_queue: str, req: DeployRequest) -> DeployView:
    """Start a deployment; returns once its ref is resolved to a commit (or it was refused)."""
    deployment_id = new_deployment_id(req.service)
    start = WithStartWorkflowOperation(
        DeploymentWorkflow.run,
        DeployInput(deployment_id=deployment_id, request=req),
        id=deployment_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        static_summary=(
            f"Deploy {constants.deploy_lane(req.service, req.environment)} at {req.ref} "
            f"for {req.agent}"
        ),
    )
    call = client.execute_update_with_start_workflow(
        DeploymentWorkflow.planned, start_workflow_operation=start
    )

    async def not_found() -> TetherError:
        return TetherError(f"deployment {deployment_id} could not be started")

    watched = _deploy_handle(client, deployment_id)
    return await ask(call, f"deployment {deployment_id}", not_found, watched)


async def deploy_view(client: Client, deployment_id: str) -> DeployView:
    async def not_found() -> TetherError:
        return TetherError(f"no deployment {deployment_id!r}; `tether deploy queue SERVICE` lists")

    call = _deploy_handle(client, deployment_id).query(DeploymentWorkflow.view_deployment)
    return await ask(call, f"deployment {deployment_id}", not_found)


async def deploy_queue(client: Client, service: str, environment: str = "staging") -> LockView:
    """Who holds the lock of the service in the environment, and who waits."""
    lane = constants.deploy_lane(service, environment)
    handle = client.get_workflow_handle_for(
        ServiceLockWorkflow.run, constants.lock_workflow_id(service, environment)
    )
    try:
        return await handle.query(ServiceLockWorkflow.queue)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return LockView(service=lane)
        raise TetherError(f"lock of {lane}: Temporal refused the query: {exc}") from exc


def prepare_approval(
    view: DeployView,
    *,
    decision: str,
    by: str,
    reason: str,
    ttl: timedelta | None,
    now: datetime | None = None,
    tag: str | None = None,
) -> Approval:
    """The approval to sign for this deployment, exactly as the worker will check it (with
    the founder's tag on its commit, from `tag_approval`)."""
    if view.commit is None or view.plan is None:
        raise TetherError(f"deployment {view.deployment_id} has no commit yet ({view.state})")
    if view.state in DEPLOY_FINAL:
        raise Refused(f"deployment {view.deployment_id} is {view.state}: {view.reason}")
    at = now or datetime.now(UTC)
    return Approval(
        deployment_id=view.deployment_id,
        service=view.request.service,
        ref=view.request.ref,
        commit=view.commit,
        decision=decision,
        reason=reason,
        expires_at=at + (ttl or timedelta(minutes=view.plan.approval_ttl_minutes)),
        signed_at=at,
        by=by,
        tag=tag,
    )


def tag_approval(
    view: DeployView, repository: Path, remote: str | None, key: Ed25519PrivateKey, by: str
) -> tuple[str, bool]:
    """The founder's signed tag `<environment>/<service>/<n>` on the deployment's commit, made
    in the service's repository (its clone at `repository`) and pushed to `remote` when the
    clone has it: (the tag, whether it was pushed). A deploy pipeline that keys on tags sees it;
    Tether's worker rolls out only while it verifies."""
    if view.commit is None:
        raise TetherError(f"deployment {view.deployment_id} has no commit yet ({view.state})")
    service, environment = view.request.service, view.request.environment
    tag = tags.next_tag(repository, remote, environment, service)
    message = (
        f"{service}: {view.request.ref} approved for {environment} by {by} ({view.deployment_id})"
    )
    tags.create_signed_tag(repository, tag, view.commit, message, key, by)
    pushed = tags.push_tag(repository, remote, tag)
    return tag, pushed


async def submit_approval(
    client: Client, deployment_id: str, approval: Approval | dict[str, object]
) -> ApprovalVerdict:
    """Send the founder's signed approval (or rejection); the worker judges its signature."""
    if not isinstance(approval, Approval):
        try:
            approval = Approval.model_validate(approval)
        except ValidationError as exc:
            raise TetherError(
                f"not an approval ({validation_problems(exc)}); `tether approve "
                f"{deployment_id} --print` shows one"
            ) from exc
    call = _deploy_handle(client, deployment_id).execute_update(
        DeploymentWorkflow.submit_approval, approval
    )

    async def not_found() -> TetherError:
        return TetherError(f"no running deployment {deployment_id!r}")

    watched = _deploy_handle(client, deployment_id)
    return await ask(call, f"deployment {deployment_id}", not_found, watched)


async def approve_by_passkey(
    client: Client, deployment_id: str, proof: PasskeyApproval
) -> ApprovalVerdict:
    """Send an approval signed on the founder's device (a passkey the founder's key enrolled);
    the workflow verifies the assertion itself, and the worker whether the passkey was revoked.
    Send it with a client that seals nothing (the proof is in the message): a seal would have
    to be of a sender allowed to approve."""
    call = _deploy_handle(client, deployment_id).execute_update(
        DeploymentWorkflow.approve_by_passkey, proof
    )

    async def not_found() -> TetherError:
        return TetherError(f"no running deployment {deployment_id!r}")

    return await ask(
        call, f"deployment {deployment_id}", not_found, _deploy_handle(client, deployment_id)
    )


async def revoke_passkey(client: Client, task_queue: str, revocation: PasskeyRevocation) -> None:
    """Record in Temporal that a passkey may no longer act for the founder (the founder's
    client: the revocation workflow takes it from the founder alone); the set is carried in a
    workflow's history, which a database user cannot undo."""
    start = WithStartWorkflowOperation(
        PasskeyRevocationsWorkflow.run,
        Revocations(),
        id=passkeys_workflow_id(task_queue),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="The founder's passkeys revoked",
    )
    call = client.execute_update_with_start_workflow(
        PasskeyRevocationsWorkflow.revoke, revocation, start_workflow_operation=start
    )

    async def not_found() -> TetherError:
        return TetherError("the passkeys' revocations could not be recorded in Temporal")

    await ask(call, "passkey revocations", not_found)


async def revoked_passkeys(client: Client, task_queue: str) -> Revocations:
    """The passkeys revoked, as Temporal keeps them (none when none ever was)."""
    handle = client.get_workflow_handle_for(
        PasskeyRevocationsWorkflow.run, passkeys_workflow_id(task_queue)
    )
    try:
        return await handle.query(PasskeyRevocationsWorkflow.revoked)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Revocations()
        raise TetherError(f"the passkeys' revocations could not be read: {exc}") from exc
