"""A deployment of one service at one exact commit: `tether deploy request SERVICE --ref REF`.

It resolves the ref to a commit and waits for the founder's approval; approved, it queues on the
service's lock (FIFO, workflows/lock.py), so an unapproved request never blocks the service.
The approval is an Ed25519 signature over the deployment, service, ref and commit
(tether/trust/signing.py), judged by an activity against the public key the
worker holds: anything unsigned, signed by another key, for another commit or expired is refused
and audit-logged, whoever sent it. With the lock and a valid approval it refuses a commit that
does not descend from the one running (stale base), takes the service's cooldown slot in
PostgreSQL (refusing, or waiting, inside the cooldown), runs the rollout command as a
heartbeating activity, then the health checks; a failure runs the rollback command. The lock is
released whatever happens, cancellation included, and every decision is an audit row.

Messages:
- signal `lock_granted(LockGrant)`: from the service's lock.
- update `planned() -> DeployView`: returns once the ref is resolved to a commit (or the request
  was refused); `tether deploy request` sends it with the start (update-with-start).
- signal `approve(Approval)` / update `submit_approval(Approval) -> ApprovalVerdict`: the
  founder's signed approval or rejection (`tether approve|reject`; the Web UI path pastes what
  `tether approve --print` emits into a signal named `approve`). An input that is not an
  Approval at all never reaches the workflow: the SDK drops such a signal and rejects such an
  update; a well-formed one is judged against the founder's key and audited either way.
- query `view_deployment() -> DeployView`.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any, cast

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, CancelledError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.deploy import DeployActivities
    from activities.sessions import SessionActivities
    from tether import constants
    from tether.contracts import (
        DEPLOY_FINAL,
        Approval,
        ApprovalVerdict,
        AuditInput,
        ClearInboxInput,
        DeployInput,
        DeployLine,
        DeployPlan,
        DeployState,
        DeployView,
        InboxItem,
        JudgeInput,
        LockGrant,
        LockRelease,
        LockRequest,
        PasskeyApproval,
        RecordDeployInput,
        RolloutClaim,
        RolloutInput,
        RolloutResult,
        RolloutSlot,
        SoakInput,
        SoakVerdict,
        StaleInput,
        StaleVerdict,
    )
    from workflows import messaging, retry
    from workflows.checking import verify
    from workflows.failures import cause_text
    from workflows.guard import decodes
    from workflows.lock import LEASE

# Inbox items name the deployment (not the service), and acting on one clears it.
INBOX_PATCH = "deploy-inbox-items"
# Since issue 14's forgery finding: a deployment that never queued still lets go of the lock
# when it ends (a forged `acquire` may have made it the holder).
ALWAYS_RELEASES_PATCH = "deploy-always-releases"


def _rollout_budget(plan: DeployPlan) -> timedelta:
    """The longest a rollout can hold the service: rollout, restart and rollback at their
    timeout, every health check's whole retry window, and a margin."""
    checks = sum(c.retry_for_seconds + c.timeout_seconds for c in plan.health_checks)
    return timedelta(seconds=3 * plan.rollout_timeout_seconds + checks + 300)


@workflow.defn
class DeploymentWorkflow:
    @workflow.init
    def __init__(self, inp: DeployInput) -> None:
        self.view = DeployView(
            deployment_id=inp.deployment_id, request=inp.request, requested_at=workflow.now()
        )
        self._queued = False
        self._soaked = False
        # This workflow's own run: code of it that runs elsewhere (see _own_activation) is a
        # coroutine the garbage collector is closing inside another workflow's activation.
        self._run_id = workflow.info().run_id
        self._rejected: str | None = None
        self._judging = asyncio.Lock()

    @workflow.run
    async def run(self, inp: DeployInput) -> DeployView:
        v = self.view
        self._show()
        renewer: asyncio.Task[None] | None = None
        torn_down = False
        try:
            try:
                plan: DeployPlan = await self._act(
                    DeployActivities.deploy_plan, inp.request, retry.PROBE
                )
            except ActivityError as err:
                await self._end(DeployState.REFUSED, cause_text(err))
                return v
            v.plan, v.commit = plan, plan.commit
            await self._audit(
                "queued",
                inp.request.agent,
                commit=plan.commit,
                ref=plan.ref,
                reason=inp.request.reason,
            )
            where = "" if plan.environment == "staging" else f" to {plan.environment}"
            after = (
                f" (once it has run {plan.soak_minutes:g} minutes healthy in staging)"
                if plan.environment == "production"
                else ""
            )
            await self._notify_founder(
                "deploy_approval",
                f"{inp.request.agent} asks to deploy {plan.service}{where} at {plan.ref} "
                f"({plan.commit[:12]}){after}",
                f"tether approve {v.deployment_id}",
            )
            renewer = asyncio.create_task(self._renew())
            await self._deploy(plan)
        except asyncio.CancelledError:
            self.view.reason = "cancelled"
            await self._end(DeployState.REFUSED, "the deployment was cancelled")
            raise
        except GeneratorExit:
            # Garbage collection is closing this coroutine after its worker let go of it
            # (sdk-python#494): this code may now run inside another workflow's activation,
            # where any command would land in that workflow's history. Do nothing.
            torn_down = True
            raise
        finally:
            # Closed by the garbage collector, the GeneratorExit may not reach this frame as
            # such (an inner coroutine closed first): whose activation this is tells it.
            torn_down = torn_down or not self._own_activation()
            if renewer is not None and not torn_down:
                renewer.cancel()
            if torn_down:
                pass
            elif self._queued:
                await self._release()
            elif workflow.patched(ALWAYS_RELEASES_PATCH):
                # The lock ignores a release from a deployment it neither holds nor queues.
                await self._lock_signal("release")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return v

    def _own_activation(self) -> bool:
        """Whether this code runs in this workflow's own activation (not, closed by the garbage
        collector after its worker let go of it, inside another workflow's: sdk-python#494)."""
        try:
            return workflow.info().run_id == self._run_id
        except Exception:  # not in any workflow's event loop at all
            return False

    async def _deploy(self, plan: DeployPlan) -> None:
        v = self.view
        deadline = v.requested_at + timedelta(hours=plan.request_ttl_hours)
        while True:
            try:
                # Approved requests queue; holding the lock, an approved one rolls out.
                await workflow.wait_condition(
                    lambda: (
                        self._rejected is not None
                        or (v.approval is not None and (v.holds_lock or not self._queued))
                    ),
                    timeout=max((deadline - workflow.now()).total_seconds(), 0.001),
                )
            except TimeoutError:
                what = "turn to roll out" if v.approval is not None else "valid approval"
                await self._end(
                    DeployState.EXPIRED,
                    f"no {what} within {plan.request_ttl_hours:g} hours of the request",
                )
                return
            if self._rejected is not None:
                await self._end(DeployState.REFUSED, f"rejected by the founder: {self._rejected}")
                return
            approval = v.approval
            if approval is None:
                continue  # the condition above says it is set; nothing to act on otherwise
            if plan.environment == "production" and not self._soaked:
                # Before queueing: a commit waiting for its time in staging never blocks
                # production's lock.
                if not await self._soak(plan, deadline):
                    return
                continue  # waited: the approval may have expired, or a rejection come
            if not self._queued:
                # Only approved requests queue, so an unapproved one never blocks the service.
                await self._act(
                    DeployActivities.request_lock,
                    LockRequest(
                        deployment_id=v.deployment_id,
                        service=plan.service,
                        agent=v.request.agent,
                        requested_at=workflow.now(),
                        environment=plan.environment,
                    ),
                    retry.WRITE,
                )
                self._queued = True
                await self._audit("lock_requested", "tether")
                continue
            if workflow.now() >= approval.expires_at:
                await self._audit(
                    "approval_expired", "tether", expires_at=approval.expires_at.isoformat()
                )
                v.approval = None
                await self._notify_founder(
                    "deploy_approval",
                    f"the approval of {v.deployment_id} expired before it could roll out; "
                    "approve again",
                    f"tether approve {v.deployment_id}",
                )
                continue
            stale: StaleVerdict = await self._act(
                DeployActivities.check_stale_base,
                StaleInput(
                    service=plan.service,
                    environment=plan.environment,
                    deployment_id=v.deployment_id,
                    repository=plan.repository,
                    commit=plan.commit,
                    tag=v.approval.tag if v.approval else None,
                ),
                retry.MUST_READ,
            )
            if not stale.ok:
                await self._end(DeployState.REFUSED, stale.reason, deployed=stale.deployed)
                return
            slot: RolloutSlot = await self._act(
                DeployActivities.claim_rollout,
                RolloutClaim(
                    service=plan.service,
                    environment=plan.environment,
                    deployment_id=v.deployment_id,
                    at=workflow.now(),
                    cooldown_minutes=plan.cooldown_minutes,
                    busy_until=workflow.now() + _rollout_budget(plan),
                ),
                retry.WRITE,
            )
            if not slot.allowed:
                until = slot.until or workflow.now()
                if slot.rolling:
                    # Only possible if the lock was bypassed (its signals forged): PostgreSQL
                    # still lets one rollout at a time through.
                    await self._end(
                        DeployState.REFUSED,
                        f"{slot.other} is rolling out {self._where(plan)} right now; rollouts "
                        "never "
                        "overlap, request again once it is done",
                    )
                    return
                left = until - workflow.now()
                minutes = max(1, round(left.total_seconds() / 60))
                why = (
                    f"{self._where(plan)} was rolled out by {slot.other} less than "
                    f"{plan.cooldown_minutes:g} minutes ago; the next rollout may start at "
                    f"{until:%H:%M:%S} UTC ({minutes} min left)"
                )
                if plan.cooldown_mode == "wait":
                    await self._audit("cooldown_wait", "tether", reason=why)
                    await workflow.sleep(max(left, timedelta(seconds=1)))
                    continue  # the approval may have expired meanwhile: check everything again
                await self._end(DeployState.REFUSED, why, until=until.isoformat())
                return
            await self._roll_out(plan, approval)
            return

    async def _soak(self, plan: DeployPlan, deadline: datetime) -> bool:
        """Production's gate: the commit ran healthy in staging for the service's soak time.
        Waits (a durable timer) while it is still soaking; False when the deployment ended."""
        v = self.view
        soak: SoakVerdict = await self._act(
            DeployActivities.staging_soak,
            SoakInput(
                service=plan.service,
                commit=plan.commit,
                minutes=plan.soak_minutes,
                now=workflow.now(),
            ),
            retry.MUST_READ,
        )
        if soak.ok:
            self._soaked = True
            v.waiting_for = ""
            await self._audit("soak_passed", "tether", reason=soak.reason)
            return True
        if soak.ready_at is None:
            await self._end(DeployState.REFUSED, soak.reason)
            return False
        if soak.ready_at > deadline:
            await self._end(
                DeployState.EXPIRED,
                f"{soak.reason}, after this request expires "
                f"({plan.request_ttl_hours:g} hours): request it again then",
            )
            return False
        v.waiting_for = soak.reason
        self._show()
        await self._audit("soak_wait", "tether", reason=soak.reason)
        with contextlib.suppress(TimeoutError):  # the time is up: check again
            # A rejection ends the wait at once.
            await workflow.wait_condition(
                lambda: self._rejected is not None,
                timeout=max((soak.ready_at - workflow.now()).total_seconds(), 1.0),
            )
        return True

    def _where(self, plan: DeployPlan) -> str:
        return plan.service if plan.environment == "staging" else f"{plan.service} in production"

    async def _roll_out(self, plan: DeployPlan, approval: Approval) -> None:
        v = self.view
        await self._audit("rollout_started", approval.by, commit=plan.commit)
        self._set(DeployState.ROLLING_OUT)
        result = await self._step("rollout", plan)
        if result.ok and plan.has_restart:
            result = await self._step("restart", plan)
        v.rollout = result
        await self._audit(
            "rollout_finished" if result.ok else "rollout_failed",
            "tether",
            summary=result.summary,
            exit_code=result.exit_code,
        )
        if not result.ok:
            await self._fail(plan, result.summary)
            return
        self._set(DeployState.CHECKING)
        v.health = list(
            await asyncio.gather(
                *(
                    verify(v.deployment_id, i, check, v.requested_at)
                    for i, check in enumerate(plan.health_checks)
                )
            )
        )
        failed = [e for e in v.health if not e.passed]
        await self._audit(
            "health_failed" if failed else "health_passed",
            "tether",
            checks=[f"{e.name}: {'ok' if e.passed else 'FAIL'} {e.summary}" for e in v.health],
        )
        if failed:
            await self._fail(plan, f"health check {failed[0].name} failed: {failed[0].summary}")
            return
        await self._end(
            DeployState.DONE, f"{self._where(plan)} runs {plan.commit[:12]} ({plan.ref})"
        )

    async def _fail(self, plan: DeployPlan, reason: str) -> None:
        if plan.has_rollback:
            back = await self._step("rollback", plan)
            self.view.rolled_back = back.ok
            await self._audit(
                "rolled_back" if back.ok else "rollback_failed", "tether", summary=back.summary
            )
        await self._end(DeployState.FAILED, reason)

    async def _step(self, step: str, plan: DeployPlan) -> RolloutResult:
        v = self.view
        try:
            result: RolloutResult = await workflow.execute_activity_method(
                DeployActivities.run_step,
                RolloutInput(
                    deployment_id=v.deployment_id,
                    service=plan.service,
                    environment=plan.environment,
                    tag=v.approval.tag if v.approval else None,
                    ref=plan.ref,
                    commit=plan.commit,
                    step=step,
                    timeout_seconds=plan.rollout_timeout_seconds,
                ),
                start_to_close_timeout=timedelta(seconds=plan.rollout_timeout_seconds + 30),
                heartbeat_timeout=timedelta(seconds=plan.rollout_heartbeat_seconds),
                retry_policy=retry.bounded(3),
                # Cancelled, the lock is released only once the command is really stopped:
                # the next rollout must never overlap this one.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
            return result
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                raise asyncio.CancelledError() from err  # the deployment itself was cancelled
            return RolloutResult(ok=False, summary=f"{step} could not run: {cause_text(err)}")

    # --- messages --------------------------------------------------------------------------

    @workflow.signal
    def lock_granted(self, grant: LockGrant) -> None:
        if grant.deployment_id == self.view.deployment_id:
            self.view.holds_lock = True

    # Decoded by the guard (workflows/guard.py): an `approve` pasted in the Web UI that is not
    # an approval is refused and audited there, not dropped by the SDK without a trace.
    @workflow.signal
    @decodes(Approval)
    async def approve(self, approval: RawValue) -> None:
        await self._judge(cast(Approval, approval))

    @workflow.update
    async def submit_approval(self, approval: Approval) -> ApprovalVerdict:
        return await self._judge(approval)

    # The founder's approval signed on the founder's device (issue 30): verified at the door
    # (the guard: the enrollment, the assertion, once) and again by the judge, which also
    # knows whether the passkey was revoked.
    @workflow.update
    async def approve_by_passkey(self, proof: PasskeyApproval) -> ApprovalVerdict:
        return await self._judge(proof.approval, passkey=proof)

    @workflow.update
    async def planned(self) -> DeployView:
        v = self.view
        await workflow.wait_condition(lambda: v.commit is not None or v.state in DEPLOY_FINAL)
        return v

    @workflow.query
    def view_deployment(self) -> DeployView:
        return self.view

    async def _judge(
        self, received: Approval, passkey: PasskeyApproval | None = None
    ) -> ApprovalVerdict:
        v = self.view
        async with self._judging:
            if v.state != DeployState.QUEUED or v.commit is None:
                why = f"the deployment is {v.state}" if v.commit else "the deployment is starting"
                await self._audit("approval_refused", "unverified", reason=f"{why}; ignored")
                return ApprovalVerdict(accepted=False, reason=f"{why}; nothing changed")
            verdict: ApprovalVerdict = await self._act(
                DeployActivities.judge_approval,
                JudgeInput(
                    deployment_id=v.deployment_id,
                    service=v.request.service,
                    ref=v.request.ref,
                    commit=v.commit,
                    received=received,
                    received_at=workflow.now(),
                    environment=v.request.environment,
                    passkey=passkey,
                ),
                retry.WRITE,
            )
            if not verdict.accepted:
                v.approval_refusals = [*v.approval_refusals, verdict.reason][-10:]
                return verdict
            if verdict.approval is not None and verdict.approval.decision == "reject":
                self._rejected = verdict.approval.reason or "no reason given"
            else:
                v.approval = verdict.approval
            await self._clear_inbox()
            return verdict

    # --- plumbing --------------------------------------------------------------------------

    async def _renew(self) -> None:
        """Keep the lock's lease while this deployment is alive."""
        while True:
            await workflow.wait_condition(lambda: self.view.holds_lock)
            await workflow.sleep(LEASE / 3)
            if self.view.holds_lock:
                await self._lock_signal("renew")

    async def _release(self) -> None:
        v = self.view
        await self._lock_signal("release")
        v.holds_lock = False
        await self._audit("lock_released", "tether", state=v.state.value)

    async def _lock_signal(self, name: str) -> None:
        # A lock that is not running holds nothing of this deployment's.
        r = self.view.request
        await messaging.tell(
            constants.lock_workflow_id(r.service, r.environment),
            name,
            LockRelease(deployment_id=self.view.deployment_id),
        )

    async def _end(self, state: DeployState, reason: str, **detail: Any) -> None:
        v = self.view
        v.reason = reason
        v.finished_at = workflow.now()
        self._set(state)
        await self._audit(state.value, "tether", reason=reason, **detail)
        if v.commit is not None:
            await self._record(state, v.commit)
        await self._clear_inbox()
        if state in (DeployState.REFUSED, DeployState.FAILED, DeployState.EXPIRED):
            await self._notify_founder(
                "deploy_refused" if state != DeployState.FAILED else "deploy_failed",
                f"deployment {v.deployment_id} of {v.request.service} {state}: {reason}",
                "",  # a notice: acknowledged with `tether inbox done`
            )

    async def _record(self, state: DeployState, commit: str) -> None:
        v = self.view
        try:
            await self._act(
                DeployActivities.record_deployment,
                RecordDeployInput(
                    deployment_id=v.deployment_id,
                    service=v.request.service,
                    environment=v.request.environment,
                    commit=commit,
                    ref=v.request.ref,
                    agent=v.request.agent,
                    state=state,
                    at=workflow.now(),
                ),
                retry.WRITE,
            )
        except ActivityError as err:
            workflow.logger.error(
                "deployment %s: outcome not recorded: %s", v.deployment_id, cause_text(err)
            )

    def _set(self, state: DeployState) -> None:
        self.view.state = state
        self._show()

    def _show(self) -> None:
        v = self.view
        workflow.upsert_search_attributes(
            [
                constants.SA_SERVICE.value_set(v.request.service),
                constants.SA_AGENT.value_set(v.request.agent),
                constants.SA_STATE.value_set(v.state.value),
            ]
        )
        commit = f" ({v.commit[:12]})" if v.commit else ""
        where = constants.deploy_lane(v.request.service, v.request.environment)
        detail = f"**{v.state}** · {where} {v.request.ref}{commit} · {v.request.agent}"
        if v.reason or v.waiting_for:
            detail += f" · {v.reason or v.waiting_for}"
        workflow.set_current_details(detail)

    def _line(self) -> DeployLine:
        """Where the deployment is, as `tether status` shows it (written with each audit row)."""
        v = self.view
        return DeployLine(
            state=v.state,
            environment=v.request.environment,
            ref=v.request.ref,
            commit=v.commit,
            agent=v.request.agent,
            reason=v.reason or v.waiting_for,
            requested_at=v.requested_at,
            queued=self._queued,
            holds_lock=v.holds_lock,
        )

    async def _audit(self, kind: str, actor: str, **detail: Any) -> None:
        try:
            await self._act(
                DeployActivities.audit,
                AuditInput(
                    deployment_id=self.view.deployment_id,
                    service=self.view.request.service,
                    kind=kind,
                    actor=actor,
                    detail=detail,
                    at=workflow.now(),
                    line=self._line(),
                ),
                retry.WRITE,
            )
        except ActivityError as err:
            # PostgreSQL stayed down through every retry: the decision stands, the log says so.
            workflow.logger.error(
                "deployment %s: audit row %s lost: %s",
                self.view.deployment_id,
                kind,
                cause_text(err),
            )

    async def _clear_inbox(self) -> None:
        """The founder acted (or the deployment ended): its approval request leaves the inbox.
        Histories from before this existed replay without it."""
        if not workflow.patched(INBOX_PATCH):
            return
        try:
            await self._act(
                SessionActivities.clear_inbox_items,
                ClearInboxInput(subject=self.view.deployment_id, kinds=["deploy_approval"]),
                retry.WRITE,
            )
        except ActivityError:
            workflow.logger.warning("deployment %s: inbox not cleared", self.view.deployment_id)

    async def _notify_founder(self, kind: str, title: str, action: str) -> None:
        # Items are about this deployment (its id is the subject), so acting on it clears them.
        subject = self.view.deployment_id
        if not workflow.patched(INBOX_PATCH):
            subject = self.view.request.service
        try:
            await self._act(
                SessionActivities.notify_founder,
                InboxItem(
                    key=f"{kind}:{self.view.deployment_id}:{workflow.now().isoformat()}",
                    kind=kind,
                    subject=subject,
                    title=title[:500],
                    detail={
                        "deployment": self.view.deployment_id,
                        "see": f"tether deploy show {self.view.deployment_id}",
                    },
                    action=action,
                ),
                retry.NOTIFY,
            )
        except ActivityError:
            workflow.logger.warning("deployment %s: could not notify", self.view.deployment_id)

    async def _act(self, fn: Any, arg: Any, preset: retry.Preset) -> Any:
        return await workflow.execute_activity_method(
            fn, arg, start_to_close_timeout=preset.timeout, retry_policy=preset.policy
        )
