"""Messages between workflows, sealed with the workers' key, and the audit of refused ones.

Workflow code holds no private key (it would be in history for anyone to read), so a workflow
that tells another one something asks this activity to send it: the worker's client seals every
signal it sends (tether/trust/seals.py) with the workers' key, which only worker processes hold.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode

from activities.escalation import escalating
from tether.contracts import DeliverInput, RefusalRecord
from tether.store import Store


class MessageActivities:
    def __init__(self, store: Store) -> None:
        self.store = store

    @activity.defn
    @escalating
    async def deliver_message(self, inp: DeliverInput) -> bool:
        """Signal `inp.workflow_id`; False when it is not running (closed, or never started)."""
        handle = activity.client().get_workflow_handle(inp.workflow_id)
        try:
            await handle.signal(inp.signal, inp.arg)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    @activity.defn
    @escalating
    async def record_refusal(self, inp: RefusalRecord) -> None:
        await self.store.record_refusal(inp)
