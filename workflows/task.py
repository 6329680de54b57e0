"""The task lifecycle: one workflow per task, the only thing that can close it.

Messages:
- update `claim(ClaimInput) -> TaskView`: take the task; refused when someone else holds it or it
  is assigned to someone else.
- update `submit(SubmitInput) -> SubmitResult`: the assignee says "done"; every check runs as an
  activity and the task is done only if all pass, otherwise it returns to the assignee.
- updates `cancel`, `block`, `unblock`, `resume` (`FounderActionInput`) -> TaskView.
- signal `governor_hold(GovernorHoldInput)`: the assignee's session holds the task — blocked by
  the anti-loop governor, or paused by the cost governor — until the founder unblocks / resumes.
- update `opened() -> TaskView`: returns once the workflow holds the task (sent with its start).
- update `sync() -> TaskView`: returns once every transition so far is in PostgreSQL.
- queries `view_task() -> TaskView`, `unrecorded() -> list[TaskEvent]`.

The read model (PostgreSQL's `tasks` and `task_events`) is written behind the transitions: no
update waits for it. The run writes what is pending, one batch at a time (a batch holds what
happened while the one before was being written), in order, each event once: by a local activity
while PostgreSQL answers, inside the workflow task that made the transition, so the row is
normally there before the update's answer reaches the client and no round trip through the
server is spent on it; after a failed local write, by regular activities (retrying for minutes,
then again every minute), while every update still answers at once. Pending events travel with
a continue-as-new; a run never closes with one unwritten. `tether task show` reads the workflow
for what the row does not have yet. Histories recorded before (patch `task-write-behind`)
waited inside every transition for a regular activity's write, as they ran.

The task tells the assignee's session itself (signals `task_claimed` and `release`, the latter
carrying the founder's signed order), so a client that dies after its update loses nothing.

The checks are part of the workflow input, fixed when the task is created; no message changes them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from pydantic import JsonValue as _JsonValue

    from activities.founder import FounderActivities
    from activities.tasks import TaskActivities
    from tether import constants, errors
    from tether.contracts import (
        GOVERNOR,
        HOLD_STATES,
        TERMINAL_STATES,
        ClaimInput,
        FounderActionInput,
        GovernorHoldInput,
        JudgeOrderInput,
        OrderVerdict,
        RecordTaskInput,
        ReleaseInput,
        SubmitInput,
        SubmitResult,
        TaskClaimedInput,
        TaskEvent,
        TaskInput,
        TaskResult,
        TaskState,
        TaskView,
    )
    from workflows import messaging, retry
    from workflows.checking import verify

# Histories recorded before the task told its agent's session itself replay without it.
TELLS_SESSION_PATCH = "task-tells-session"
# Histories recorded before the read model was written behind waited for it in every transition
# (and told the session with a regular activity).
WRITE_BEHIND_PATCH = messaging.TASK_WRITE_BEHIND
# After a write to the read model failed its retries (PostgreSQL out for minutes): try again.
REWRITE_AFTER = timedelta(minutes=1)


def _refuse(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn
class TaskWorkflow:
    @workflow.init
    def __init__(self, inp: TaskInput) -> None:
        if inp.carried is not None:
            self.view = inp.carried
        else:
            now = workflow.now()
            self.view = TaskView(
                spec=inp.spec, assignee=inp.spec.assignee, created_at=now, updated_at=now
            )
        self._pending: list[TaskEvent] = []
        # The view changed without an event (evidence of a submit the founder cancelled).
        self._dirty = False
        self._persist_lock = asyncio.Lock()
        # The founder's actions (cancel, block, unblock, resume) one at a time, each checking
        # the state again once it holds the lock and after every await: one that waited for a
        # founder order to be judged must not undo another that finished meanwhile.
        self._actions = asyncio.Lock()
        self._behind: bool | None = None
        # The creation is queued for the read model (a continued run was created long ago).
        self._created = inp.carried is not None

    @workflow.run
    async def run(self, inp: TaskInput) -> TaskResult:
        if inp.carried is None:
            # Redundant with the upsert in _transition, but recorded histories include it:
            # removing it is a nondeterministic change (tests/test_replay.py catches it).
            if not self._writes_behind():
                self._set_search_attributes()
            self._created = True  # _transition queues the event before its first await
            await self._transition(self.view.state, self.view.spec.created_by, "created", {})
        if self._writes_behind():
            await self._write_behind()
        else:
            await workflow.wait_condition(self._closing)
        # Let running handlers finish and every event reach PostgreSQL before leaving this run.
        await workflow.wait_condition(workflow.all_handlers_finished)
        while self._unwritten():
            if not await self._persist():
                await workflow.sleep(REWRITE_AFTER)
        if self.view.state not in TERMINAL_STATES:
            workflow.continue_as_new(TaskInput(spec=self.view.spec, carried=self.view))
        return TaskResult(task=self.view)

    def _closing(self) -> bool:
        return self.view.state in TERMINAL_STATES or workflow.info().is_continue_as_new_suggested()

    def _writes_behind(self) -> bool:
        if self._behind is None:
            self._behind = workflow.patched(WRITE_BEHIND_PATCH)
        return self._behind

    async def _write_behind(self) -> None:
        """Write the read model behind the transitions until the run closes: one batch at a
        time, holding everything that happened while the last one was written."""
        local = True
        while True:
            await workflow.wait_condition(lambda: self._unwritten() or self._closing())
            if not self._unwritten():
                return
            if await self._persist(local=local):
                local = True
            elif local:
                # PostgreSQL did not answer a local write: regular activities from now on
                # (a local one would hold the workflow task, and every answer with it, while it
                # retried), which retry for minutes and show in the Web UI as pending.
                local = False
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await workflow.wait_condition(self._closing, timeout=REWRITE_AFTER)

    def _unwritten(self) -> bool:
        # A view changed without an event is written behind too (histories from before wrote
        # it at once, and only retried the events).
        return bool(self._pending) or (self._dirty and bool(self._behind))

    # --- queries and updates -----------------------------------------------------------------

    @workflow.query
    def view_task(self) -> TaskView:
        return self.view

    @workflow.query
    def unrecorded(self) -> list[TaskEvent]:
        """The events the read model does not have yet (written behind)."""
        return list(self._pending)

    @workflow.update
    async def opened(self) -> TaskView:
        await workflow.wait_condition(lambda: self._created)
        return self.view

    @workflow.update
    async def sync(self) -> TaskView:
        if self._writes_behind() or workflow.patched("sync-waits-for-creation"):
            # Delivered with the start, the update can run before the workflow's own code has
            # queued the creation: "nothing pending" would then answer before it is recorded
            # (seen with PostgreSQL down: `tether task create` said created).
            await workflow.wait_condition(lambda: self._created)
        await workflow.wait_condition(lambda: not self._unwritten())
        return self.view

    @workflow.update
    async def claim(self, inp: ClaimInput) -> TaskView:
        self._check_claim(inp)
        if self.view.state == TaskState.CLAIMED:
            return self.view  # the holder claiming again changes nothing
        self.view.assignee = inp.agent
        await self._transition(TaskState.CLAIMED, inp.agent, "claimed", {})
        # The agent's session governs its work on the task from now on (cost, loops, handoff).
        await self._tell_session(
            inp.agent,
            "task_claimed",
            TaskClaimedInput(task_id=self.view.spec.id, kind=self.view.spec.kind),
        )
        return self.view

    @claim.validator
    def _validate_claim(self, inp: ClaimInput) -> None:
        self._check_claim(inp)

    def _check_claim(self, inp: ClaimInput) -> None:
        v, task_id = self.view, self.view.spec.id
        if v.state in TERMINAL_STATES:
            raise _refuse(
                f"task {task_id} is {v.state}; it cannot be claimed", errors.CLAIM_REFUSED
            )
        if v.state in HOLD_STATES:
            raise _refuse(
                f"task {task_id} is {v.state}: {v.hold_reason}; it cannot be claimed until the "
                "founder releases it",
                errors.CLAIM_REFUSED,
            )
        if v.assignee is not None and v.assignee != inp.agent:
            held = v.state in (TaskState.CLAIMED, TaskState.VERIFYING)
            raise _refuse(
                f"task {task_id} is {'held by' if held else 'assigned to'} {v.assignee}; "
                "pick another task",
                errors.CLAIM_REFUSED,
            )
        if v.state == TaskState.VERIFYING:
            raise _refuse(f"task {task_id} is being verified", errors.CLAIM_REFUSED)

    @workflow.update
    async def submit(self, inp: SubmitInput) -> SubmitResult:
        self._check_submit(inp)
        self.view.submissions += 1
        self.view.last_note = inp.note
        detail: dict[str, _JsonValue] = {"note": inp.note} if inp.note else {}
        await self._transition(TaskState.VERIFYING, inp.agent, "submitted", detail)

        checks = self.view.spec.checks
        v = self.view
        evidence = list(
            await asyncio.gather(
                *(verify(v.spec.id, i, c, v.created_at) for i, c in enumerate(checks))
            )
        )
        self.view.last_evidence = evidence
        failed = [e.name for e in evidence if not e.passed]
        if self.view.state != TaskState.VERIFYING:
            # Cancelled while the checks ran: the founder's decision stands.
            self._dirty = True
            if not self._writes_behind():
                await self._persist()
        elif failed:
            await self._transition(
                TaskState.CLAIMED, "tether", "verification_failed", {"failed": list(failed)}
            )
        else:
            await self._transition(TaskState.DONE, "tether", "verified", {})
        return SubmitResult(
            task_id=self.view.spec.id,
            done=self.view.state == TaskState.DONE,
            state=self.view.state,
            evidence=evidence,
        )

    @submit.validator
    def _validate_submit(self, inp: SubmitInput) -> None:
        self._check_submit(inp)

    def _check_submit(self, inp: SubmitInput) -> None:
        v, task_id = self.view, self.view.spec.id
        if v.assignee != inp.agent:
            who = f"its assignee, {v.assignee}" if v.assignee else "the agent that claimed it"
            raise _refuse(f"only {who}, can submit task {task_id}", errors.SUBMIT_REFUSED)
        if v.state == TaskState.OPEN:
            raise _refuse(
                f"task {task_id} is not claimed yet; claim it first", errors.SUBMIT_REFUSED
            )
        if v.state == TaskState.VERIFYING:
            raise _refuse(f"task {task_id} is already being verified", errors.SUBMIT_REFUSED)
        if v.state != TaskState.CLAIMED:
            reason = f": {v.hold_reason}" if v.state in HOLD_STATES else ""
            raise _refuse(f"task {task_id} is {v.state}{reason}", errors.SUBMIT_REFUSED)

    @workflow.update
    async def cancel(self, inp: FounderActionInput) -> TaskView:
        async with self._actions:
            self._check_cancel(inp)
            await self._authorise(inp, "cancel")
            self._check_cancel(inp)
            await self._transition(TaskState.CANCELLED, inp.by, "cancelled", {"reason": inp.reason})
            await self._release_session(inp, closed=True)
            return self.view

    @cancel.validator
    def _validate_cancel(self, inp: FounderActionInput) -> None:
        self._check_cancel(inp)

    def _check_cancel(self, inp: FounderActionInput) -> None:
        if self.view.state in TERMINAL_STATES:
            raise _refuse(
                f"task {self.view.spec.id} is already {self.view.state}", errors.ACTION_REFUSED
            )

    @workflow.update
    async def block(self, inp: FounderActionInput) -> TaskView:
        async with self._actions:
            self._check_block(inp)
            v = self.view
            v.held_from, v.hold_reason, v.held_by = v.state, inp.reason, inp.by
            await self._transition(TaskState.BLOCKED, inp.by, "blocked", {"reason": inp.reason})
            return self.view

    @block.validator
    def _validate_block(self, inp: FounderActionInput) -> None:
        self._check_block(inp)

    def _check_block(self, inp: FounderActionInput) -> None:
        v = self.view
        if not inp.reason.strip():
            raise _refuse("blocking a task needs a reason", errors.ACTION_REFUSED)
        if v.state not in (TaskState.OPEN, TaskState.CLAIMED):
            hint = "; wait until verification finishes" if v.state == TaskState.VERIFYING else ""
            raise _refuse(f"task {v.spec.id} is {v.state}{hint}", errors.ACTION_REFUSED)

    @workflow.update
    async def unblock(self, inp: FounderActionInput) -> TaskView:
        return await self._release(inp, "unblock", self._check_unblock)

    async def _release(
        self, inp: FounderActionInput, action: str, check: Callable[[FounderActionInput], None]
    ) -> TaskView:
        """Back to the state the task was held from (blocked or paused)."""
        async with self._actions:
            check(inp)
            await self._authorise(inp, action)
            check(inp)
            return await self._released(inp, action)

    async def _released(self, inp: FounderActionInput, action: str) -> TaskView:
        v = self.view
        back = v.held_from or TaskState.OPEN
        v.held_from = v.hold_reason = v.held_by = None
        kind = {"unblock": "unblocked", "resume": "resumed"}[action]
        await self._transition(back, inp.by, kind, {"reason": inp.reason})
        await self._release_session(inp, closed=False)
        return v

    async def _release_session(self, inp: FounderActionInput, closed: bool) -> None:
        """The assignee's session is held with its task: the founder's order releases both."""
        if self.view.assignee is None:
            return
        release = ReleaseInput(
            by=inp.by,
            reason=inp.reason,
            task_id=self.view.spec.id,
            task_closed=closed,
            order=inp.order,
        )
        await self._tell_session(self.view.assignee, "release", release)

    async def _tell_session(
        self, agent: str, signal: str, arg: TaskClaimedInput | ReleaseInput
    ) -> None:
        if self._writes_behind() or workflow.patched(TELLS_SESSION_PATCH):
            # No open session: nothing to tell; the next one reads the task table. Told before
            # the update answers (the agent's next report must find its task), in the worker's
            # own workflow task: a local activity, no round trip through the server.
            local = self._writes_behind()
            await messaging.tell(constants.session_workflow_id(agent), signal, arg, local=local)

    async def _authorise(self, inp: FounderActionInput, action: str) -> None:
        """A governor's hold (loop, cost) is lifted only by a founder-signed order: the agent
        it holds must not be able to lift it. Holds the founder set take the action on trust."""
        v = self.view
        if v.held_by != GOVERNOR:
            return
        verdict: OrderVerdict = await workflow.execute_activity_method(
            FounderActivities.judge_order,
            JudgeOrderInput(
                received=inp.order,
                actions=[action],
                subject=v.spec.id,
                judged_for=f"task {v.spec.id}",
                at=workflow.now(),
            ),
            start_to_close_timeout=retry.WRITE.timeout,
            retry_policy=retry.WRITE.policy,
        )
        if not verdict.accepted:
            raise _refuse(
                f"task {v.spec.id} is {v.state} by Tether's governor ({v.hold_reason}); only a "
                f"founder-signed order lifts it, and this one was refused: {verdict.reason}",
                errors.ACTION_REFUSED,
            )

    @unblock.validator
    def _validate_unblock(self, inp: FounderActionInput) -> None:
        self._check_unblock(inp)

    def _check_unblock(self, inp: FounderActionInput) -> None:
        if self.view.state != TaskState.BLOCKED:
            raise _refuse(
                f"task {self.view.spec.id} is {self.view.state}, not blocked", errors.ACTION_REFUSED
            )

    @workflow.update
    async def resume(self, inp: FounderActionInput) -> TaskView:
        return await self._release(inp, "resume", self._check_resume)

    @resume.validator
    def _validate_resume(self, inp: FounderActionInput) -> None:
        self._check_resume(inp)

    def _check_resume(self, inp: FounderActionInput) -> None:
        v = self.view
        if v.state != TaskState.PAUSED:
            hint = (
                "; a blocked task is released with: tether task unblock"
                if (v.state == TaskState.BLOCKED)
                else ""
            )
            raise _refuse(f"task {v.spec.id} is {v.state}, not paused{hint}", errors.ACTION_REFUSED)

    @workflow.signal
    async def governor_hold(self, inp: GovernorHoldInput) -> None:
        v = self.view
        if v.state != TaskState.CLAIMED or v.assignee != inp.agent:
            # Only the holder's session can hold a task it works on; anything else is stale.
            workflow.logger.info(
                "task %s: hold by %s ignored (task is %s, held by %s)",
                v.spec.id,
                inp.agent,
                v.state,
                v.assignee,
            )
            return
        to = TaskState.BLOCKED if inp.kind == "loop" else TaskState.PAUSED
        v.held_from, v.hold_reason, v.held_by = v.state, inp.reason, GOVERNOR
        kind = "loop_blocked" if inp.kind == "loop" else "cost_paused"
        await self._transition(to, "tether", kind, {"reason": inp.reason, **inp.evidence})

    # --- internals ---------------------------------------------------------------------------

    async def _transition(
        self, to: TaskState, actor: str, kind: str, detail: dict[str, _JsonValue]
    ) -> None:
        now = workflow.now()
        self.view.seq += 1
        self._pending.append(
            TaskEvent(
                seq=self.view.seq,
                at=now,
                actor=actor,
                kind=kind,
                from_state=None if kind == "created" else self.view.state,
                to_state=to,
                detail=detail,
            )
        )
        self.view.state = to
        self.view.updated_at = now
        self._set_search_attributes()
        if not self._writes_behind():
            await self._persist()

    async def _persist(self, local: bool = False) -> bool:
        """Write what is pending; False when the write failed (it is kept for the next).
        `local`: as a local activity, run by the worker inside the workflow task that made the
        transition, which completes (and answers the update) once the row is written: no round
        trip through the server, and the client reads its change from PostgreSQL at once."""
        async with self._persist_lock:
            batch = list(self._pending)
            self._dirty = False
            record = RecordTaskInput(task=self.view.model_copy(deep=True), events=batch)
            try:
                if local:
                    await workflow.execute_local_activity_method(
                        TaskActivities.record_task,
                        record,
                        start_to_close_timeout=retry.LOCAL_WRITE.timeout,
                        retry_policy=retry.LOCAL_WRITE.policy,
                    )
                else:
                    await workflow.execute_activity_method(
                        TaskActivities.record_task,
                        record,
                        start_to_close_timeout=retry.READ_MODEL.timeout,
                        retry_policy=retry.READ_MODEL.policy,
                    )
            except FailureError:
                # The read model lags; the next write carries these events again. (A local
                # activity's failure comes as the activity's own error, not an ActivityError.)
                workflow.logger.warning("task %s: read model write failed", self.view.spec.id)
                self._dirty = True
                return False
            done = {e.seq for e in batch}
            self._pending = [e for e in self._pending if e.seq not in done]
            return True

    def _set_search_attributes(self) -> None:
        updates = [
            constants.SA_TASK.value_set(self.view.spec.id),
            constants.SA_STATE.value_set(self.view.state.value),
            constants.SA_AGENT.value_set(self.view.assignee)
            if self.view.assignee
            else constants.SA_AGENT.value_unset(),
        ]
        if self._writes_behind():
            # Only what changed (the start set the task, its state and its assignee): each
            # upsert is a history event and a write to Temporal's visibility store.
            now = workflow.info().typed_search_attributes
            updates = [u for u in updates if now.get(u.key) != u.value]
        if updates:
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(
            f"**{self.view.state}**"
            + (f" · {self.view.assignee}" if self.view.assignee else "")
            + (f" · {self.view.hold_reason}" if self.view.hold_reason else "")
        )
