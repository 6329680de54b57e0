"""The founder's passkeys revoked, kept where a database user cannot undo them: in this
workflow's history (id `tether-passkey-revocations-<task queue>`, one per Tether). `tether founder
passkeys --revoke NAME` sends `revoke` with the founder's seal (update-with-start); the worker's
judge asks `revoked` before it accepts an action a passkey signed, besides the database's row.

- update `revoke(PasskeyRevocation) -> Revocations`: founder only (workflows/policy.py).
- query `revoked() -> Revocations`.

It continues as new when Temporal suggests it, carrying the set.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tether.contracts import PasskeyRevocation, Revocations


@workflow.defn
class PasskeyRevocationsWorkflow:
    @workflow.init
    def __init__(self, carried: Revocations) -> None:
        self.view = carried

    @workflow.run
    async def run(self, carried: Revocations) -> Revocations:
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested())
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self.view)

    @workflow.update
    def revoke(self, inp: PasskeyRevocation) -> Revocations:
        self.view.revoked[inp.credential_id] = f"{inp.name or 'unnamed'}, by {inp.by}"
        return self.view

    @workflow.query
    def revoked(self) -> Revocations:
        return self.view
