"""Workflow-to-workflow messages: the one way a Tether workflow tells another one something.

Only `ExternalWorkflowExecutionNotFound` means the other workflow is gone (closed, or never
started); any other failure is re-raised, so that a real problem is seen rather than read as
"nobody to tell" (the pattern of samples-python `resource_pool`).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

NOT_FOUND = "ExternalWorkflowExecutionNotFound"


async def tell(workflow_id: str, signal: str, arg: BaseModel) -> bool:
    """Signal the workflow `workflow_id`; False when it is not running."""
    try:
        await workflow.get_external_workflow_handle(workflow_id).signal(signal, arg)
    except ApplicationError as err:
        if err.type != NOT_FOUND:
            raise
        workflow.logger.info("%s is not running; %s not delivered", workflow_id, signal)
        return False
    return True
