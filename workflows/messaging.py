"""Workflow-to-workflow messages: the one way a Tether workflow tells another one something.

Every such message is sealed with the workers' key (tether/trust/seals.py), which workflow code must
not hold: an activity (`deliver_message`) sends it with the worker's sealing client. Histories
from before seals (patch `sealed-messages`) keep signalling directly, as they ran.

Only "not running" means the other workflow is gone (closed, or never started); any other
failure is re-raised, so that a real problem is seen rather than read as "nobody to tell" (the
pattern of samples-python `resource_pool`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from tether.contracts import DeliverInput
    from tether.names import (
        PASSKEYS_WORKFLOW,
        PROCESS_WORKFLOW,
        SESSION_WORKFLOW,
        TASK_WORKFLOW,
    )

NOT_FOUND = "ExternalWorkflowExecutionNotFound"
PATCH = "sealed-messages"
# Patches that came after `sealed-messages` in a workflow's own code: a history that has one
# was recorded with seals, so no patch of its own is recorded (each patch is a marker and a
# search-attribute upsert in every new workflow's history).
TASK_WRITE_BEHIND = "task-write-behind"  # workflows/task.py
SESSION_SPREAD_FLUSHES = "session-spread-flushes"  # workflows/session.py
SESSION_FIGURES = "session-cockpit-figures"  # workflows/session.py
SESSION_QUIET_FLUSH = "session-quiet-flush"  # workflows/session.py
# Newest first: each implies the ones after it, so a new run records only the first.
SEALED_SINCE: dict[str, tuple[str, ...]] = {
    TASK_WORKFLOW: (TASK_WRITE_BEHIND,),
    SESSION_WORKFLOW: (SESSION_QUIET_FLUSH, SESSION_FIGURES, SESSION_SPREAD_FLUSHES),
}


# Workflow types that came after seals: every history of theirs has them, with no patch.
BORN_SEALED = frozenset({PROCESS_WORKFLOW, PASSKEYS_WORKFLOW})


def sealed_messages() -> bool:
    """Whether this workflow's history holds messages to seals (patch `sealed-messages`, or a
    later patch of the workflow's own that implies it): the guard's check and `tell`'s."""
    kind = workflow.info().workflow_type
    if kind in BORN_SEALED:
        return True
    later = SEALED_SINCE.get(kind, ())
    return any(workflow.patched(p) for p in later) or workflow.patched(PATCH)


# Since issue 30: a founder's action refused at a workflow's door also puts an item in the
# founder's inbox (the guard, workflows/guard.py).
REFUSAL_INBOX = "refusal-tells-founder"


def founder_inbox() -> bool:
    return workflow.patched(REFUSAL_INBOX)


async def tell(workflow_id: str, signal: str, arg: BaseModel, local: bool = False) -> bool:
    """Signal the workflow `workflow_id`; False when it is not running. `local`: as a local
    activity, run by the worker inside the workflow task that asks for it (no round trip through
    the server; for a message the caller waits on)."""
    if sealed_messages():
        deliver = DeliverInput(
            workflow_id=workflow_id,
            signal=signal,
            # As the seal covers it (tether.trust.seals.canonical): the receiver, decoding it into
            # its contract, comes to the same digest.
            arg=arg.model_dump(mode="json", exclude_defaults=True),
        )
        timeout = timedelta(seconds=30)
        policy = RetryPolicy(maximum_interval=timedelta(seconds=10))
        delivered: bool = await (
            workflow.execute_local_activity(
                "deliver_message",
                deliver,
                result_type=bool,
                start_to_close_timeout=timeout,
                retry_policy=policy,
            )
            if local
            else workflow.execute_activity(
                "deliver_message",
                deliver,
                result_type=bool,
                start_to_close_timeout=timeout,
                retry_policy=policy,
            )
        )
        if not delivered:
            workflow.logger.debug("%s is not running; %s not delivered", workflow_id, signal)
        return delivered
    try:
        await workflow.get_external_workflow_handle(workflow_id).signal(signal, arg)
    except ApplicationError as err:
        if err.type != NOT_FOUND:
            raise
        workflow.logger.debug("%s is not running; %s not delivered", workflow_id, signal)
        return False
    return True
