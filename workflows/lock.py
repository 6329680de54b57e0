"""One deployment per service at a time: a lock workflow per service (id `lock-<service>`), in
the spirit of samples-python `resource_pool` and samples-go `mutex`.

- signal `acquire(LockRequest)`: join the FIFO queue (a request already queued or holding is
  ignored, so a retried request is harmless). Deployments send it with signal-with-start.
- signal `renew(LockRelease)`: the holder is alive; its lease runs `LEASE` from now.
- signal `release(LockRelease)`: the holder is done (or a waiter gives up).
- query `queue() -> LockView`: the holder, its lease and who waits, in order.

The holder is told by the signal `lock_granted` on its deployment workflow. A requester whose
workflow is gone cannot be signalled and is skipped; a holder that stops renewing (its workflow
was terminated) loses the lock when its lease runs out. The workflow continues as new when
Temporal suggests it, carrying the queue.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tether import constants
    from tether.contracts import LockGrant, LockInput, LockRelease, LockRequest, LockView
    from workflows import messaging

# A holder renews every LEASE / 3; one that misses a whole lease is taken to be dead.
LEASE = timedelta(minutes=10)
KEPT = 20


@workflow.defn
class ServiceLockWorkflow:
    @workflow.init
    def __init__(self, inp: LockInput) -> None:
        self.view = inp.carried or LockView(service=inp.service)
        self._changed = True
        self._shown: tuple[str, tuple[str, ...]] | None = None
        # The request being told it holds the lock (while `lock_granted` is on its way), and
        # whether it released meanwhile: a release then is kept, not dropped.
        self._granting: str | None = None
        self._released_while_granting = False

    @workflow.run
    async def run(self, inp: LockInput) -> LockView:
        while True:
            timeout = None
            if self.view.lease_until is not None:
                timeout = max((self.view.lease_until - workflow.now()).total_seconds(), 0.001)
            with contextlib.suppress(TimeoutError):  # the lease ran out: _settle handles it
                await workflow.wait_condition(
                    lambda: self._changed or workflow.info().is_continue_as_new_suggested(),
                    timeout=timeout,
                )
            self._changed = False
            await self._settle()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._changed:
                    workflow.continue_as_new(
                        LockInput(service=self.view.service, carried=self.view)
                    )

    async def _settle(self) -> None:
        v = self.view
        if v.holder is not None and v.lease_until is not None and workflow.now() >= v.lease_until:
            workflow.logger.warning(
                "lock %s: %s stopped renewing; its lease ran out", v.service, v.holder.deployment_id
            )
            v.expired = [*v.expired, v.holder.deployment_id][-KEPT:]
            v.holder = v.lease_until = None
        while v.holder is None and v.waiting:
            nxt = v.waiting.pop(0)
            grant = LockGrant(
                service=v.service,
                deployment_id=nxt.deployment_id,
                lease_seconds=LEASE.total_seconds(),
            )
            self._granting, self._released_while_granting = nxt.deployment_id, False
            try:
                told = await messaging.tell(nxt.deployment_id, "lock_granted", grant)
            finally:
                self._granting = None
            if not told:
                # The requester's workflow is gone: skip it, never block the queue on it.
                v.skipped = [*v.skipped, nxt.deployment_id][-KEPT:]
                continue
            v.granted += 1
            if self._released_while_granting:
                continue  # done (or gone) before it heard: the next one gets the lock now
            v.holder, v.lease_until = nxt, workflow.now() + LEASE
        self._summary()

    @workflow.signal
    def acquire(self, req: LockRequest) -> None:
        v = self.view
        if (v.holder and v.holder.deployment_id == req.deployment_id) or any(
            w.deployment_id == req.deployment_id for w in v.waiting
        ):
            return
        v.waiting.append(req)
        self._changed = True

    @workflow.signal
    def renew(self, rel: LockRelease) -> None:
        v = self.view
        if v.holder is not None and v.holder.deployment_id == rel.deployment_id:
            v.lease_until = workflow.now() + LEASE
            self._changed = True

    @workflow.signal
    def release(self, rel: LockRelease) -> None:
        v = self.view
        if rel.deployment_id == self._granting:
            self._released_while_granting = True
        elif v.holder is not None and v.holder.deployment_id == rel.deployment_id:
            v.holder = v.lease_until = None
        else:
            v.waiting = [w for w in v.waiting if w.deployment_id != rel.deployment_id]
        self._changed = True

    @workflow.query
    def queue(self) -> LockView:
        return self.view

    def _summary(self) -> None:
        v = self.view
        shown = (
            v.holder.deployment_id if v.holder else "",
            tuple(w.deployment_id for w in v.waiting),
        )
        if shown == self._shown:
            return  # a renewal changes nothing the founder sees
        self._shown = shown
        workflow.upsert_search_attributes(
            [
                constants.SA_SERVICE.value_set(v.service),
                constants.SA_STATE.value_set("held" if v.holder else "free"),
            ]
        )
        holder = f"held by {v.holder.deployment_id} ({v.holder.agent})" if v.holder else "free"
        waiting = ", ".join(w.deployment_id for w in v.waiting) or "nobody"
        workflow.set_current_details(f"**{v.service}** lock: {holder}; waiting: {waiting}")
