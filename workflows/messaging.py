"""Workflow-to-workflow messages: the one way a Tether workflow tells another one something.

Every such message is sealed with the workers' key (tether/seals.py), which workflow code must
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

NOT_FOUND = "ExternalWorkflowExecutionNotFound"
PATCH = "sealed-messages"


async def tell(workflow_id: str, signal: str, arg: BaseModel) -> bool:
    """Signal the workflow `workflow_id`; False when it is not running."""
    if workflow.patched(PATCH):
        delivered: bool = await workflow.execute_activity(
            "deliver_message",
            DeliverInput(
                workflow_id=workflow_id,
                signal=signal,
                # As the seal covers it (tether.seals.canonical): the receiver, decoding it into
                # its contract, comes to the same digest.
                arg=arg.model_dump(mode="json", exclude_defaults=True),
            ),
            result_type=bool,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
        )
        if not delivered:
            workflow.logger.info("%s is not running; %s not delivered", workflow_id, signal)
        return delivered
    try:
        await workflow.get_external_workflow_handle(workflow_id).signal(signal, arg)
    except ApplicationError as err:
        if err.type != NOT_FOUND:
            raise
        workflow.logger.info("%s is not running; %s not delivered", workflow_id, signal)
        return False
    return True
