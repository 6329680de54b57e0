"""An agent session: one workflow per session, at most one open per agent (id `session-<agent>`).

Before the agent does anything the workflow reads the ground truth (git, the forge, the task
table), probes every credential the agent needs, and composes the startup brief. A bad credential
blocks the session at once and tells the founder. When the session ends — by the agent, its
runtime's hook, the founder, or the deadline when nobody says so — the artifact test runs here,
in the orchestrator, and a session without its artifact is flagged as pseudo-work.

Messages:
- update `ready() -> SessionView`: returns once the startup is done (brief ready, or blocked).
- update `end(EndSessionInput) -> SessionView`: ends the session; returns after the artifact test.
- update `check_deliverable() -> ArtifactResult`: the artifact test now, without ending.
- update `recheck(RecheckInput) -> SessionView`: probe the credentials again; unblock if fixed.
- update `declare(Artifact) -> SessionView`: say what will exist when the session is done.
- query `view_session() -> SessionView`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.sessions import SessionActivities
    from tether import constants, errors
    from tether.brief import compose_brief
    from tether.contracts import (
        Artifact,
        ArtifactInput,
        ArtifactResult,
        Blocker,
        CredentialStatus,
        EndSessionInput,
        GroundTruth,
        InboxItem,
        ProbeInput,
        PullRequestInfo,
        RecheckInput,
        RecordSessionInput,
        SessionInput,
        SessionSetup,
        SessionState,
        SessionView,
        SyncInput,
    )

T = TypeVar("T")

# Bounded everywhere: a session never loops on a failing side effect.
_QUICK = RetryPolicy(maximum_attempts=3, non_retryable_error_types=[errors.CREDENTIAL_REJECTED])
_STORE = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
)


def _refuse(message: str) -> ApplicationError:
    return ApplicationError(message, type=errors.SESSION_REFUSED, non_retryable=True)


def _cause(err: ActivityError) -> str:
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause)


def _rejection(err: ActivityError) -> tuple[str, str] | None:
    """(credential, reason) when the activity met a 401/403."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == errors.CREDENTIAL_REJECTED:
        details = [*list(cause.details), "?", "was rejected"]
        return str(details[0]), str(details[1])
    return None


@workflow.defn
class AgentSessionWorkflow:
    @workflow.init
    def __init__(self, inp: SessionInput) -> None:
        if inp.carried is not None:
            self.view = inp.carried
        else:
            self.view = SessionView(
                agent=inp.agent,
                external_id=inp.external_id,
                runtime=inp.runtime,
                started_at=workflow.now(),
                task_id=inp.task_id,
                artifact=inp.artifact,
            )
        self._end: EndSessionInput | None = None
        # Set once the end is fully recorded and the founder told: `end` returns after it.
        self._finished = False

    @workflow.run
    async def run(self, inp: SessionInput) -> SessionView:
        if inp.carried is None:
            self._set_search_attributes()
            await self._startup()
        assert self.view.deadline is not None
        left = (self.view.deadline - workflow.now()).total_seconds()
        try:
            await workflow.wait_condition(
                lambda: self._end is not None or workflow.info().is_continue_as_new_suggested(),
                timeout=max(left, 0.001),
            )
        except TimeoutError:
            if self._end is None:
                self._end = EndSessionInput(
                    reason="no end was reported before the session deadline", by="tether"
                )
        if self._end is None:
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(SessionInput(agent=self.view.agent, carried=self.view))
        await self._finish(self._end)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.view

    # --- messages ------------------------------------------------------------------------------

    @workflow.query
    def view_session(self) -> SessionView:
        return self.view

    @workflow.update
    async def ready(self) -> SessionView:
        await workflow.wait_condition(lambda: self.view.state != SessionState.STARTING)
        return self.view

    @workflow.update
    async def end(self, inp: EndSessionInput) -> SessionView:
        self._end = inp
        await workflow.wait_condition(lambda: self._finished)
        return self.view

    @end.validator
    def _validate_end(self, inp: EndSessionInput) -> None:
        self._check_open()
        if inp.external_id and self.view.external_id and inp.external_id != self.view.external_id:
            raise _refuse(
                f"session {inp.external_id} is not the current session of {self.view.agent} "
                f"({self.view.external_id}); nothing ended"
            )

    @workflow.update
    async def check_deliverable(self) -> ArtifactResult:
        return await self._check_artifact()

    @check_deliverable.validator
    def _validate_check(self) -> None:
        self._check_open()

    @workflow.update
    async def declare(self, artifact: Artifact) -> SessionView:
        self.view.artifact = artifact
        await self._record()
        return self.view

    @declare.validator
    def _validate_declare(self, artifact: Artifact) -> None:
        self._check_open()

    @workflow.update
    async def recheck(self, inp: RecheckInput) -> SessionView:
        names = [c.name for c in self.view.credentials]
        statuses = await self._probe(names)
        # The forge token may be the one that was rejected: read the forge again too.
        _, _, rejected = await self._read_forge()
        bad = [s for s in statuses if not s.ok]
        if not bad and rejected is None:
            self.view.credentials = statuses
            self.view.blocker = None
            self.view.notice = ""
            self.view.state = SessionState.ACTIVE
            self._set_search_attributes()
            await self._activity(
                SessionActivities.clear_credential_blockers, self.view.agent, _STORE, 30
            )
            await self._record()
        else:
            await self._block(statuses, rejected)
        return self.view

    @recheck.validator
    def _validate_recheck(self, inp: RecheckInput) -> None:
        if self.view.state != SessionState.BLOCKED or self.view.blocker is None:
            raise _refuse(f"the session of {self.view.agent} is {self.view.state}, not blocked")
        if self.view.blocker.kind != "credential":
            raise _refuse(f"{self.view.blocker.reason}; a recheck cannot fix configuration")

    def _check_open(self) -> None:
        if self.view.state == SessionState.ENDED or self._end is not None:
            raise _refuse(f"the session of {self.view.agent} has ended")

    # --- startup -------------------------------------------------------------------------------

    async def _startup(self) -> None:
        v = self.view
        setup: SessionSetup = await self._activity(
            SessionActivities.session_setup, v.agent, _QUICK, 30
        )
        assert v.started_at is not None
        v.deadline = v.started_at + timedelta(hours=setup.max_hours)
        if not setup.known:
            v.blocker = Blocker(
                kind="config", subject=v.agent, reason=setup.problem, since=workflow.now()
            )
            v.notice = v.blocker.message()
            await self._tell_founder_blocked()
            v.state = SessionState.BLOCKED
            self._set_search_attributes()
            await self._record()
            return
        key = f"{v.agent}:{v.started_at.isoformat()}"
        statuses, truth, (prs, forge_problems, rejected) = await asyncio.gather(
            self._probe(setup.credentials),
            self._read_local_truth(SyncInput(agent=v.agent, session_key=key)),
            self._read_forge(),
        )
        v.credentials = statuses
        v.branch_tips, v.checked_out = truth.branch_tips, truth.checked_out
        truth = truth.model_copy(
            update={"pull_requests": prs, "problems": [*truth.problems, *forge_problems]}
        )
        unverified = [
            f"credential {s.name} {s.reason}" for s in statuses if s.ok and not s.verified
        ]
        v.brief = compose_brief(v.agent, setup.repositories, truth, unverified, login=setup.login)
        # The founder hears of overlaps before the agent gets its brief.
        for overlap in v.brief.overlaps:
            await self._notify(
                InboxItem(
                    key=f"overlap:{overlap.summary}"[:300],
                    kind="overlap",
                    subject=v.agent,
                    title=overlap.summary,
                    detail=overlap.model_dump(mode="json"),
                    action="tether task list --state claimed",
                )
            )
        if any(not s.ok for s in statuses) or rejected is not None:
            await self._block(statuses, rejected)
        else:
            v.state = SessionState.ACTIVE
            self._set_search_attributes()
            await self._record()

    async def _probe(self, names: list[str]) -> list[CredentialStatus]:
        if not names:
            return []
        try:
            result: list[CredentialStatus] = await self._activity(
                SessionActivities.probe_credentials,
                ProbeInput(agent=self.view.agent, credentials=names),
                _QUICK,
                60,
            )
            return result
        except ActivityError as err:
            # The probes themselves failed to run: nothing says the credentials are good.
            now = workflow.now()
            return [
                CredentialStatus(
                    name=n,
                    kind="unknown",
                    ok=False,
                    verified=False,
                    reason=f"could not be probed ({_cause(err)})",
                    checked_at=now,
                )
                for n in names
            ]

    async def _read_local_truth(self, inp: SyncInput) -> GroundTruth:
        """Git, the task table and the handoff. If they cannot be read the session still starts,
        and the brief says what is missing: nothing here says a credential is bad."""
        try:
            truth: GroundTruth = await self._activity(
                SessionActivities.read_local_truth, inp, _QUICK, 120
            )
            return truth
        except ActivityError as err:
            return GroundTruth(
                problems=[f"git and the task table could not be read: {_cause(err)}"]
            )

    async def _read_forge(self) -> tuple[list[PullRequestInfo], list[str], tuple[str, str] | None]:
        """Open pull requests, problems, and the credential rejection if there was one."""
        try:
            prs, problems = await self._activity(
                SessionActivities.read_forge,
                SyncInput(agent=self.view.agent, session_key=""),
                _QUICK,
                120,
            )
        except ActivityError as err:
            if (rejected := _rejection(err)) is not None:
                return [], [], rejected
            return [], [f"pull requests could not be read: {_cause(err)}"], None
        return prs, problems, None

    async def _block(
        self, statuses: list[CredentialStatus], rejected: tuple[str, str] | None
    ) -> None:
        v = self.view
        v.credentials = statuses
        bad = [(s.name, s.reason) for s in statuses if not s.ok]
        if rejected is not None and rejected[0] not in [b[0] for b in bad]:
            bad.append(rejected)
        name, reason = bad[0]
        if len(bad) > 1:
            reason += f" (also failing: {', '.join(b[0] for b in bad[1:])})"
        v.blocker = Blocker(kind="credential", subject=name, reason=reason, since=workflow.now())
        v.notice = v.blocker.message()
        # The founder is told before the agent hears it is blocked.
        await self._tell_founder_blocked()
        v.state = SessionState.BLOCKED
        self._set_search_attributes()
        await self._record()

    async def _tell_founder_blocked(self) -> None:
        v = self.view
        assert v.blocker is not None
        fix = (
            f"fix credential {v.blocker.subject}, then: tether session recheck {v.agent}"
            if v.blocker.kind == "credential"
            else "fix tether.toml and restart the worker"
        )
        await self._notify(
            InboxItem(
                key=f"blocked:{v.agent}:{v.started_at}:{v.blocker.subject}:{v.blocker.reason}"[
                    :300
                ],
                kind="credential_blocked",
                subject=v.agent,
                title=f"{v.agent} is blocked: {v.blocker.describe()}",
                detail={"credential": v.blocker.subject, "reason": v.blocker.reason},
                action=fix,
            )
        )

    # --- end -----------------------------------------------------------------------------------

    async def _check_artifact(self) -> ArtifactResult:
        v = self.view
        assert v.started_at is not None
        result: ArtifactResult = await self._activity(
            SessionActivities.check_artifact,
            ArtifactInput(
                agent=v.agent,
                artifact=v.artifact,
                task_id=v.task_id,
                started_at=v.started_at,
                branch_tips=v.branch_tips,
                checked_out=v.checked_out,
            ),
            _QUICK,
            120,
        )
        return result

    async def _finish(self, end: EndSessionInput) -> None:
        v = self.view
        v.end_reason, v.ended_by = end.reason, end.by
        could_check = True
        try:
            result = await self._check_artifact()
        except ActivityError as err:
            could_check = False
            result = ArtifactResult(
                passed=False,
                summary=f"the artifact could not be checked: {_cause(err)}",
                checked_at=workflow.now(),
            )
        v.artifact_result = result
        # A blocked session could not work; a check that could not run proves nothing.
        v.pseudo_work = could_check and not result.passed and v.state != SessionState.BLOCKED
        v.state = SessionState.ENDED
        v.ended_at = workflow.now()
        self._set_search_attributes()
        await self._record()
        if v.pseudo_work:
            await self._notify(
                InboxItem(
                    key=f"pseudo:{v.agent}:{v.started_at}",
                    kind="pseudo_work",
                    subject=v.agent,
                    title=f"{v.agent}'s session ended without a deliverable: {result.summary}",
                    detail={"reason": v.end_reason or "", "artifact": result.summary},
                    action=f"tether session list --agent {v.agent}",
                )
            )
        elif not could_check:
            await self._notify(
                InboxItem(
                    key=f"session-error:{v.agent}:{v.started_at}",
                    kind="session_error",
                    subject=v.agent,
                    title=f"{v.agent}'s session ended; {result.summary}",
                    action=f"tether session list --agent {v.agent}",
                )
            )
        self._finished = True

    # --- plumbing ------------------------------------------------------------------------------

    async def _activity(
        self,
        fn: Callable[..., Awaitable[T]],
        arg: Any,
        retry: RetryPolicy,
        timeout_seconds: float,
    ) -> T:
        return await workflow.execute_activity_method(
            fn,
            arg,
            start_to_close_timeout=timedelta(seconds=timeout_seconds),
            retry_policy=retry,
        )

    async def _notify(self, item: InboxItem) -> None:
        try:
            await self._activity(SessionActivities.notify_founder, item, _STORE, 60)
        except ActivityError:
            workflow.logger.warning("session %s: could not notify the founder", self.view.agent)

    async def _record(self) -> None:
        info = workflow.info()
        try:
            await self._activity(
                SessionActivities.record_session,
                RecordSessionInput(
                    session=self.view.model_copy(deep=True),
                    workflow_id=info.workflow_id,
                    run_id=info.run_id,
                ),
                _STORE,
                30,
            )
        except ActivityError:
            workflow.logger.warning("session %s: sessions table write failed", self.view.agent)

    def _set_search_attributes(self) -> None:
        v = self.view
        workflow.upsert_search_attributes(
            [
                constants.SA_AGENT.value_set(v.agent),
                constants.SA_STATE.value_set(v.state.value),
                constants.SA_TASK.value_set(v.task_id)
                if v.task_id
                else constants.SA_TASK.value_unset(),
            ]
        )
        detail = f"**{v.state}** · {v.agent}"
        if v.blocker:
            detail += f" · {v.blocker.message()}"
        if v.state == SessionState.ENDED and v.artifact_result:
            flag = "PSEUDO-WORK: " if v.pseudo_work else ""
            detail += f" · {flag}{v.artifact_result.summary}"
        workflow.set_current_details(detail)
