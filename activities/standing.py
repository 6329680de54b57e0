"""Whether a passkey may still act for the founder, asked by the judges of approvals and orders
(activities/deploy.py, activities/founder.py): enrolled in this Tether's database and not
revoked there, and not revoked in Temporal (workflows/passkeys.py), where a database user cannot
undo a revocation."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode

from tether.contracts import Revocations
from tether.names import passkeys_workflow_id
from tether.store import Store


async def passkey_standing(store: Store, credential_id: str) -> str | None:
    """None when the passkey may act; else why not."""
    problem = await store.passkey_standing(credential_id)
    if problem is not None:
        return problem
    # By name: the activities never import the workflows they serve. This Tether's (its task
    # queue's), answered by its workers; not answered in time, the passkey may not act.
    queue = activity.info().task_queue
    handle = activity.client().get_workflow_handle(passkeys_workflow_id(queue))
    try:
        revoked = await handle.query(
            "revoked", result_type=Revocations, rpc_timeout=timedelta(seconds=10)
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            return f"the passkeys' revocations could not be read from Temporal ({exc.message})"
        revoked = Revocations()  # nothing was ever revoked
    if credential_id in revoked.revoked:
        return f"the passkey was revoked ({revoked.revoked[credential_id]}), as Temporal keeps it"
    return None
