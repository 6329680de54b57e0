"""An agent session: one workflow per session, at most one open per agent (id `session-<agent>`).

Before the agent does anything the workflow reads the ground truth (git, the forge, the task
table), probes every credential the agent needs, and composes the startup brief. A bad credential
blocks the session at once and tells the founder. When the session ends — by the agent, its
runtime's hook, the founder, or the deadline when nobody says so — the artifact test runs here,
in the orchestrator, and a session without its artifact is flagged as pseudo-work.

Messages:
- update `attach(AttachInput) -> SessionView` (sent with update-with-start by the client and the
  hook): returns once the startup is done (brief ready, or blocked). The same runtime session
  resumes; another runtime session supersedes this one (it ends, then the update fails with
  `SessionSuperseded`); an ended or ending session refuses it with `SessionEnded`.
- update `ready() -> SessionView`: returns once the startup is done (no caller sends it any
  more; kept because recorded histories contain it and must replay).
- update `end(EndSessionInput) -> SessionView`: ends the session; returns after the artifact test.
- update `check_deliverable() -> ArtifactResult`: the artifact test now, without ending.
- update `recheck(RecheckInput) -> SessionView`: probe the credentials again; unblock if fixed.
- update `declare(Artifact) -> SessionView`: say what will exist when the session is done.
- update `report(Report) -> ReportAnswer`: a tool call, context usage, spend (the governors).
- update `runtime_usage(RuntimeUsage) -> ReportAnswer`: the spend and context the runner reads
  from the process it runs (workers only), reconciled with the hooks' reports per process.
- update `note(NoteInput) -> SessionView`: a decision or open question, kept for the handoff.
- update `release_hold(ReleaseInput) -> SessionView`: the founder lifts a loop block or cost
  pause with a signed order; refused when nothing is held or the order does not verify.
- signal `release(ReleaseInput)`: the same, fire-and-forget (the task workflow sends it when its
  task is unblocked, resumed or cancelled, forwarding the founder's order; the Web UI can too).
- signal `task_claimed(TaskClaimedInput)`: the agent claimed a task (sent by the task workflow).
- query `view_session() -> SessionView`; query `gate() -> Gate` (PreToolUse, kept small).

The state-changing async handlers (attach's supersede aside, which only asks for the end) run
under one lock with the startup and the end, and re-check the state after every await: an
end that arrives while a recheck probes credentials is never undone by it.

Governors (tether/core/governors.py, pure): context usage crossing 70/85/95% gives compact, trim and
handoff directives once per crossing; at handoff the state is archived to the knowledge base and
the session ends, so the next one starts from the handoff brief. The same failing action five
times holds the work and blocks the task; a task's cost above 3x / 5x the rolling average warns /
pauses it. Reports are answered without any activity unless something must happen, and the
ledger and tool-call log are written in batches from the main loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import zlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError
from temporalio.exceptions import TimeoutError as ActivityTimeout
from temporalio.workflow import ActivityCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.founder import FounderActivities
    from activities.runner import RunnerActivities
    from activities.sessions import SessionActivities
    from tether import constants, errors
    from tether.contracts import (
        GOVERNOR,
        HOLD_STATES,
        AgentLaunch,
        AgentRun,
        Artifact,
        ArtifactInput,
        ArtifactResult,
        AttachInput,
        Blocker,
        BudgetInput,
        ClearInboxInput,
        CostBaseline,
        CostBaselineInput,
        CredentialStatus,
        Directive,
        EndSessionInput,
        FiguresInput,
        FlushInput,
        Gate,
        GovernorHoldInput,
        GroundTruth,
        HandoffInput,
        Hold,
        InboxItem,
        JudgeOrderInput,
        NoteInput,
        NoticeInput,
        OrderVerdict,
        ProbeInput,
        ProcessEnd,
        ProcessInput,
        PullRequestInfo,
        RecheckInput,
        RecordSessionInput,
        ReleaseInput,
        Report,
        ReportAnswer,
        RunOutcome,
        RunRequest,
        RuntimeUsage,
        SessionFigures,
        SessionInput,
        SessionSetup,
        SessionState,
        SessionView,
        StopInput,
        SyncInput,
        TaskClaimedInput,
        TaskState,
    )
    from tether.core import governors, inbox
    from tether.core.brief import compose_brief
    from tether.names import process_workflow_id
    from workflows import messaging, retry
    from workflows.failures import cause_text
    from workflows.process import AgentProcessWorkflow

T = TypeVar("T")

# Write the ledger and the tool-call log after this many reports, or this long after the last.
FLUSH_EVERY_REPORTS = 50
FLUSH_EVERY = timedelta(seconds=60)
# Leave a run after this many reports even if Temporal does not suggest it (2,000 updates/run).
REPORTS_PER_RUN = 1000
# Notices kept for the agent's next report (the latest ones).
NOTICES_KEPT = 5
# The agent's process (issue 15): its heartbeat, how long Tether waits for it to be gone once
# it stops it, and the longest pause between restarts after a crash.
RUNNER_HEARTBEAT = timedelta(seconds=5)
RUNNER_STOP_WAIT = timedelta(seconds=60)
RESTART_BACKOFF_CAP = 60.0
# What Claude Code's /compact is told to keep when Tether compacts a session it runs.
COMPACT_INSTRUCTIONS = (
    "Keep word for word: the decisions made, the files being edited, the most recent tool "
    "outputs and the task (its id, what is done, what is left). Summarise everything else in a "
    "few lines."
)
ACTIVE_PHASES = ("starting", "running", "restarting")
# While the agent's process runs, the session leaves its run only past this many events.
RUNNING_HISTORY_LIMIT = 20_000
GOVERNORS_PATCH = "tether-governors"
# Since issue 12: a task claimed before the session started becomes the session's task.
ADOPTS_CLAIM_PATCH = "session-adopts-claimed-task"
# Since issue 12: the startup reads git, tasks and the forge while it reads the agent's setup
# and probes its credentials.
FAST_START_PATCH = "session-fast-start"
# Since issue 15: the session reads its hard budgets at start and after each ledger write.
BUDGETS_PATCH = "session-budgets"
# Since issue 18: sessions started together write their ledgers at different reports (a phase
# of their own), not all in the same second. Implies every patch above (one marker per run).
SPREAD_PATCH = messaging.SESSION_SPREAD_FLUSHES
# Since issue 18: the session keeps what `tether status` shows of it in its PostgreSQL row
# (written when any of it but the numbers changes, and with each ledger write), so the status
# reads PostgreSQL alone. Implies SPREAD_PATCH.
FIGURES_PATCH = messaging.SESSION_FIGURES
# Since issue 18: a session gone quiet with reports not in the ledger writes them (and its
# figures) a minute after its last write, by a timer, instead of at its next report: what the
# status and the budgets read of an idle agent. Implies FIGURES_PATCH.
QUIET_PATCH = messaging.SESSION_QUIET_FLUSH
# The agent's process runs in a workflow of its own (workflows/process.py), not as an activity
# of the session's run: a run recorded before it keeps its activity, and stops it to continue
# as new, as it did.
OWN_PROCESS_PATCH = "session-process-workflow"
# Since issue 32: a hold names a task only if the agent holds it (a run started with --task
# whose agent never claimed it is held by itself: `tether session release` lifts it).
HOLD_OWN_TASK_PATCH = "session-hold-names-a-held-task"
FIGURES_RETRY_AFTER = timedelta(minutes=1)


def _phase(agent: str, period: int) -> int:
    """The agent's own offset in [0, period): the same in every run and every replay."""
    return zlib.crc32(agent.encode()) % period


def _refuse(message: str) -> ApplicationError:
    return ApplicationError(message, type=errors.SESSION_REFUSED, non_retryable=True)


def _rejection(err: ActivityError) -> tuple[str, str] | None:
    """(credential, reason) when the activity met a 401/403."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type == errors.CREDENTIAL_REJECTED:
        details = [*list(cause.details), "?", "was rejected"]
        return str(details[0]), str(details[1])
    return None


class _Stoppable:
    """The agent's process running in its own workflow: `cancel` tells it to stop (sealed, as
    every workflow-to-workflow message is); its end comes back as `process_ended`."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        # Set once its workflow has started: a stop told before then would find nobody.
        self.started = False
        self._told: asyncio.Task[None] | None = None

    def cancel(self) -> None:
        if self._told is None:
            self._told = asyncio.create_task(self._tell())

    async def _tell(self) -> None:
        await workflow.wait_condition(lambda: self.started)
        stop = StopInput(reason="its session stops it", by="tether")
        await messaging.tell(self.workflow_id, "stop", stop, local=True)


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
        self._run_reports = 0
        self._flushed_at = workflow.now()
        self._flush_lock = asyncio.Lock()
        self._spread: bool | None = None
        self._figures: bool | None = None
        self._quiet: bool | None = None
        # The main loop waits with nothing unwritten in the ledger (its quiet timer is unset).
        self._idle = False
        # What the figures in PostgreSQL show (SessionFigures.shown), once the row exists.
        self._recorded = inp.carried is not None
        self._shown: tuple[object, ...] | None = None
        # After a failed write (PostgreSQL out), none by local activity until then: each one
        # holds the workflow task, and the answers in it, while it retries.
        self._figures_resume_at: datetime | None = None
        # Serialises the handlers that await and change state (recheck, release, task_claimed)
        # with the startup and the end; each re-checks the state after its awaits.
        self._lock = asyncio.Lock()
        # A handoff ends the session without a pseudo-work verdict: the work goes on.
        self._handed_off = False
        self._governors = True
        self._budgets = False
        # Read the budgets again (after a ledger write: the other sessions' spend moved on);
        # the UTC day they were last read for, and whether a read is under way.
        self._budget_stale = False
        self._budget_day: str | None = None
        self._budget_reading = False
        # The agent's process, when Tether runs it: the supervising task and what stops the
        # process running now (its workflow, or in older runs its activity).
        self._runner: asyncio.Task[None] | None = None
        self._process: _Stoppable | workflow.ActivityHandle[RunOutcome] | None = None
        # Whether processes run in workflows of their own (patch), once a process is started;
        # and whether one is being started or compacting (the run is not left meanwhile).
        self._own_processes: bool | None = None
        self._unsettled = False
        self._compacting = False
        # Processes ended so far, and what the supervisor does after the one being stopped
        # (a memory stage: compact, or trim), with the prompt the next one resumes with.
        self._process_ends = 0
        self._next_step: str | None = None
        self._resume_prompt: str | None = None

    @workflow.run
    async def run(self, inp: SessionInput) -> SessionView:
        # Sessions recorded before the governors existed replay without their activities.
        self._governors = self._spreads() or workflow.patched(GOVERNORS_PATCH)
        self._budgets = self._spreads() or workflow.patched(BUDGETS_PATCH)
        if self._spreads():
            # A quiet session writes its ledger a minute after the last write: each session
            # at its own second of that minute.
            self._flushed_at -= timedelta(seconds=_phase(self.view.agent, 60))
        if inp.carried is None:
            self._set_search_attributes()
            async with self._lock:
                await self._startup()
            v = self.view
            if self._budget_due():
                # Before the agent's process starts: a session over its budget runs nothing.
                await self._load_budget()
            if (
                inp.run is not None
                and v.state == SessionState.ACTIVE
                and v.governor.hold is None
                and not self._running()
            ):
                self._begin_run(inp.run)
        elif self.view.run is not None and self.view.run.phase in (
            "starting",
            "running",
            "restarting",
        ):
            # Carried across continue-as-new: the runtime session goes on where it was.
            self._runner = asyncio.create_task(self._supervise(resume=True))
        # Beside this loop, not in it: a write under way never holds up the end of the session.
        figures = asyncio.create_task(self._keep_figures())
        deadline = self.view.deadline or workflow.now()
        while True:
            left = (deadline - workflow.now()).total_seconds()
            # Waiting with nothing unwritten: the first report after it sets the quiet timer.
            self._idle = self._flushes_when_quiet() and not self._unflushed()
            quiet_in = self._quiet_flush_in()
            for_deadline = left <= quiet_in
            try:
                await workflow.wait_condition(
                    lambda: (
                        self._end is not None
                        or self._leave_run()
                        or self._baseline_due()
                        or self._budget_due()
                        or self._flush_due()
                        or (self._idle and self._unflushed())
                    ),
                    timeout=max(min(left, quiet_in), 0.001),
                )
            except TimeoutError:
                if self._end is None and for_deadline:
                    self._end = EndSessionInput(
                        reason="no end was reported before the session deadline", by="tether"
                    )
            if self._end is not None or self._leave_run():
                break
            if self._baseline_due():
                await self._load_baseline()
            if self._flush_due():
                await self._flush()
                self._budget_stale = True
            if self._budget_due():
                await self._load_budget()
        figures.cancel()
        end = self._end
        if end is None:
            # Handlers finish before the state is carried on; an end that arrives meanwhile
            # (its handler waits for the finish, so it never "finishes") ends this run instead.
            await workflow.wait_condition(
                lambda: workflow.all_handlers_finished() or self._end is not None
            )
            end = self._end
            if end is None:
                # Unwritten ledger rows and tool calls travel in the carried state, and so does
                # the agent's process: its own workflow runs on, and the next run hears its end.
                # (A run recorded before that stops it here; it resumes in the next run.)
                if self._own_processes is False:
                    await self._stop_process("the session continues in a new run", carry=True)
                workflow.continue_as_new(SessionInput(agent=self.view.agent, carried=self.view))
        await self._stop_process(f"the session ended: {end.reason}")
        async with self._lock:
            await self._finish(end)
        await workflow.wait_condition(workflow.all_handlers_finished)
        v = self.view
        if self._handed_off and v.run is not None:
            # Tether ran this session: the next one starts now, from the handoff brief, in the
            # same workflow id (this session's record is final in PostgreSQL).
            workflow.continue_as_new(
                SessionInput(
                    agent=v.agent,
                    runtime=v.runtime,
                    source="handoff",
                    task_id=v.task_id,
                    run=RunRequest(
                        prompt=v.run.request.prompt, task_id=v.task_id, by="tether (handoff)"
                    ),
                )
            )
        return v

    def _leave_run(self) -> bool:
        if self._unsettled or self._compacting:
            return False  # a process being started, or a compaction: the run stays
        if self._runner is not None and not self._runner.done():
            # While the agent's process runs, only when the history really is long: the
            # server's suggestion alone comes early (seen right after the first activity of a
            # run on the dev server), and each run's start costs its supervisor a step. (In
            # runs recorded before processes had workflows of their own, leaving the run
            # stopped the process; it resumed in the next run.)
            return (
                self._run_reports >= REPORTS_PER_RUN
                or workflow.info().get_current_history_length() >= RUNNING_HISTORY_LIMIT
            )
        return (
            workflow.info().is_continue_as_new_suggested() or self._run_reports >= REPORTS_PER_RUN
        )

    def _governed(self) -> bool:
        return self.view.governor.reports > 0 or self.view.task_id is not None

    def _baseline_due(self) -> bool:
        v = self.view
        return (
            v.task_id is not None
            and v.governor.baseline is None
            and v.state == SessionState.ACTIVE
            and self._governors
        )

    def _budget_due(self) -> bool:
        v = self.view
        g = v.governor
        if not (self._budgets and g.limits.budgeted and v.state == SessionState.ACTIVE):
            return False
        if self._budget_reading:
            return False
        return self._budget_stale or self._budget_day != workflow.now().date().isoformat()

    def _spreads(self) -> bool:
        if self._spread is None:
            self._spread = self._keeps_figures() or workflow.patched(SPREAD_PATCH)
        return self._spread

    def _keeps_figures(self) -> bool:
        if self._figures is None:
            self._figures = self._flushes_when_quiet() or workflow.patched(FIGURES_PATCH)
        return self._figures

    def _flushes_when_quiet(self) -> bool:
        if self._quiet is None:
            self._quiet = workflow.patched(QUIET_PATCH)
        return self._quiet

    def _unflushed(self) -> bool:
        g = self.view.governor
        return self._governors and g.reports > g.flushed_reports

    def _figures_now(self) -> SessionFigures:
        return SessionFigures.of(self.view, workflow.now())

    def _figures_due(self) -> bool:
        """Whether what the status shows of this session changed (the numbers aside) since
        it was last written; the row must exist first (the first sessions-row write)."""
        if not (self._recorded and self._keeps_figures()) or self._end is not None:
            return False
        if self._figures_resume_at is not None and workflow.now() < self._figures_resume_at:
            return False
        return self._figures_now().shown() != self._shown

    async def _keep_figures(self) -> None:
        while True:
            await workflow.wait_condition(self._figures_due)
            await self._write_figures()

    async def _write_figures(self) -> None:
        """The figures into the session's row, by a local activity: inside the workflow task
        that changed them, with no round trip through the server."""
        figures = self._figures_now()
        try:
            await workflow.execute_local_activity_method(
                SessionActivities.record_figures,
                FiguresInput(
                    agent=self.view.agent, started_at=self.view.started_at, figures=figures
                ),
                start_to_close_timeout=retry.LOCAL_WRITE.timeout,
                retry_policy=retry.LOCAL_WRITE.policy,
            )
        except FailureError:
            # PostgreSQL is out (a local activity's failure is its own error, not an
            # ActivityError): the status shows older figures until the next ledger write (a
            # regular activity, which rides the outage out), or a change a minute from now.
            workflow.logger.warning("session %s: figures not written", self.view.agent)
            self._figures_resume_at = workflow.now() + FIGURES_RETRY_AFTER
        self._shown = figures.shown()

    def _quiet_flush_in(self) -> float:
        """Seconds until a session gone quiet with reports not yet in the ledger writes them
        (and its figures). Unbounded when nothing waits, and for runs from before the patch
        (they wrote at their next report)."""
        if not (self._flushes_when_quiet() and self._unflushed()):
            return math.inf
        return (self._flushed_at + FLUSH_EVERY - workflow.now()).total_seconds()

    def _flush_due(self) -> bool:
        g = self.view.governor
        pending = g.reports - g.flushed_reports
        every = FLUSH_EVERY_REPORTS
        if g.flushed_reports == 0 and self._spread:
            # The session's first write comes at its own phase, so that sessions started
            # together (a team starting its day) keep writing at different reports.
            every = 1 + _phase(self.view.agent, FLUSH_EVERY_REPORTS)
        return pending > 0 and (
            pending >= every or workflow.now() - self._flushed_at >= FLUSH_EVERY
        )

    # --- messages ------------------------------------------------------------------------------

    @workflow.query
    def view_session(self) -> SessionView:
        return self.view

    @workflow.query
    def gate(self) -> Gate:
        """Whether the agent may use a tool now, and if not why (PreToolUse asks this)."""
        v = self.view
        deny: str | None = None
        if v.state == SessionState.BLOCKED:
            deny = v.notice or "blocked by Tether"
        elif v.state == SessionState.STARTING:
            deny = "Tether is still checking this session's credentials; try again"
        elif v.governor.hold is not None:
            deny = governors.hold_message(v.governor.hold)
        elif self._end is not None and v.state != SessionState.ENDED:
            deny = (
                "this session is ending"
                + (" after a handoff" if self._handed_off else "")
                + "; start a new session (it begins with the handoff brief)"
            )
        elif v.state == SessionState.ENDED:
            deny = (
                f"Tether handed this session off ({v.end_reason}) and archived its state; start "
                "a new session: it begins with the handoff brief"
                if self._handed_off
                else f"this session has ended ({v.end_reason}); start a new session"
            )
        return Gate(state=v.state, external_id=v.external_id, deny=deny)

    @workflow.update
    async def report(self, report: Report) -> ReportAnswer:
        v = self.view
        if self._sent_again():
            return governors.Outcome().answer(v.governor)
        self._run_reports += 1
        if v.governor.limits.budgeted and v.governor.budget is None:
            # The first budget read is under way (it starts with the session): judge this
            # report against it.
            await workflow.wait_condition(
                lambda: (
                    v.governor.budget is not None
                    or (self._budget_day is not None and not self._budget_reading)
                    or self._closing()
                )
            )
        outcome = governors.apply_report(v.governor, report, v.task_id, workflow.now())
        return await self._act(outcome)

    @report.validator
    def _validate_report(self, report: Report) -> None:
        self._check_open()
        self._check_runtime(report.external_id)

    @workflow.update
    async def runtime_usage(self, usage: RuntimeUsage) -> ReportAnswer:
        """The runtime's own figures for the process Tether runs (sent by the runner as it
        reads the process's output): spend where it says more than the hooks, context usage
        when no hook reports it; acted on like a report."""
        v = self.view
        if self._sent_again():
            return governors.Outcome().answer(v.governor)
        self._run_reports += 1
        outcome = governors.apply_runtime(v.governor, usage, v.task_id, workflow.now())
        return await self._act(outcome)

    @runtime_usage.validator
    def _validate_runtime_usage(self, usage: RuntimeUsage) -> None:
        self._check_open()
        self._check_runtime(usage.runtime_session)

    def _sent_again(self) -> bool:
        """A report Temporal could not recognise as sent again: one whose first sending landed
        in an earlier run of this session (Temporal dedupes update ids within a run only)."""
        info = workflow.current_update_info()
        return governors.already_applied(self.view.governor, info.id if info else None)

    async def _act(self, outcome: governors.Outcome) -> ReportAnswer:
        """Do what a report (or the runtime's figures) made necessary, and answer it."""
        v = self.view
        await self._act_on(outcome)
        answer = outcome.answer(v.governor)
        answer.state = v.state.value
        if v.notices:
            # What Tether told the session since the last report: read once, then gone.
            answer.directives += [Directive(kind="notice", text=n) for n in v.notices]
            v.notices = []
        return answer

    async def _act_on(self, outcome: governors.Outcome) -> None:
        v = self.view
        if outcome.new_hold is not None:
            await self._hold(outcome.new_hold)
        if outcome.cost_warning and v.task_id is not None:
            spent = governors.task_cost(v.governor, v.task_id)
            terms = governors.cost_terms(v.governor)
            await self._notify(inbox.cost_warning(v, v.task_id, spent, terms))
        if outcome.handoff:
            await self._handoff()
        elif v.governor.hold is None:
            # A process Tether runs is acted on, not only told: compacted, or trimmed.
            kinds = {d.kind for d in outcome.directives}
            if "compact" in kinds:
                await self._interrupt("compact")
            elif "trim" in kinds:
                await self._interrupt("trim")
        if outcome.directives:
            self._set_search_attributes()

    @workflow.update
    async def note(self, inp: NoteInput) -> SessionView:
        g = self.view.governor
        g.notes.append(f"{inp.kind}: {inp.text.strip()}")
        del g.notes[: -governors.NOTES_KEPT]
        return self.view

    @note.validator
    def _validate_note(self, inp: NoteInput) -> None:
        self._check_open()

    @workflow.update
    async def run_agent(self, inp: RunRequest) -> SessionView:
        """`tether run AGENT`: start the agent's process now, in this session; returns once it
        is launched (or refused: a blocked or held session runs nothing)."""
        v = self.view
        await workflow.wait_condition(
            lambda: (
                v.state != SessionState.STARTING
                and not self._budget_due()
                and not self._budget_reading
            )
        )
        if v.state != SessionState.ACTIVE or v.governor.hold is not None:
            why = v.notice or (
                governors.hold_message(v.governor.hold) if v.governor.hold else str(v.state)
            )
            raise _refuse(f"{v.agent} cannot run now: {why}")
        if self._running():
            # Another run began while this one waited (its validator passed before either
            # started): one process per session.
            raise _refuse(f"{v.agent} is already running; `tether stop` it first")
        self._begin_run(inp)
        await workflow.wait_condition(lambda: v.run is None or v.run.phase != "starting")
        return v

    def _begin_run(self, request: RunRequest) -> None:
        v = self.view
        if v.external_id is None:
            v.external_id = str(workflow.uuid4())
        v.run = AgentRun(request=request, runtime_session=v.external_id)
        self._runner = asyncio.create_task(self._supervise(resume=False))

    @run_agent.validator
    def _validate_run(self, inp: RunRequest) -> None:
        if self._closing():
            raise ApplicationError(
                f"the session of {self.view.agent} has ended; the run starts in the next one",
                type=errors.SESSION_ENDED,
                non_retryable=True,
            )
        if self._running():
            raise _refuse(f"{self.view.agent} is already running; `tether stop` it first")

    def _running(self) -> bool:
        """Whether the agent's process is running or about to (from the state the session
        carries, so that a message in a new run's first moments sees it too)."""
        run = self.view.run
        return run is not None and run.phase in ("starting", "running", "restarting")

    @workflow.update
    async def stop_agent(self, inp: StopInput) -> SessionView:
        """`tether stop AGENT`: end the agent's process group now (SIGTERM, then SIGKILL)."""
        # In a new run's first moments the supervisor of the carried process is not made yet.
        await workflow.wait_condition(lambda: self._runner is not None or not self._running())
        await self._stop_process(f"{inp.reason} ({inp.by})")
        return self.view

    @stop_agent.validator
    def _validate_stop(self, inp: StopInput) -> None:
        if not self._running():
            raise _refuse(f"Tether is not running {self.view.agent}'s process; nothing to stop")

    @workflow.signal
    def notice(self, inp: NoticeInput) -> None:
        """Tether tells the agent something (a refused deployment tag): with its next report's
        answer. The latest few are kept; an ended session ignores it."""
        if self.view.state == SessionState.ENDED:
            return
        self.view.notices = [*self.view.notices, inp.text][-NOTICES_KEPT:]

    @workflow.signal
    async def release(self, inp: ReleaseInput) -> None:
        async with self._lock:
            refused = await self._release(inp)
        if refused:
            workflow.logger.warning("session %s: release refused: %s", self.view.agent, refused)

    @workflow.update
    async def release_hold(self, inp: ReleaseInput) -> SessionView:
        async with self._lock:
            refused = await self._release(inp)
        if refused:
            raise _refuse(f"the session of {self.view.agent} is still held: {refused}")
        return self.view

    @release_hold.validator
    def _validate_release_hold(self, inp: ReleaseInput) -> None:
        self._check_open()
        if self.view.governor.hold is None:
            raise _refuse(f"the session of {self.view.agent} is not held; nothing changed")
        if inp.order is None:
            raise _refuse(
                "only an order signed with the founder's key lifts a hold, and none came with "
                "it (the tether command signs one when $TETHER_HOME/founder.key exists)"
            )

    async def _release(self, inp: ReleaseInput) -> str | None:
        """Lift the hold if the founder's order says so; the refusal's reason otherwise."""
        v = self.view
        hold = v.governor.hold
        if hold is None or (inp.task_id is not None and hold.task_id not in (None, inp.task_id)):
            if inp.task_closed and inp.task_id is not None and v.task_id == inp.task_id:
                v.task_id = None
                governors.change_task(v.governor)
            return None if hold is None else f"the hold is on task {hold.task_id}"
        # Anyone who can reach Temporal can send this: only a founder-signed order for this
        # hold's task (or for this agent) lifts it.
        if hold.task_id is not None and inp.order is not None and inp.order.subject == hold.task_id:
            subject, actions = hold.task_id, ["unblock", "resume", "cancel"]
        else:
            subject, actions = v.agent, ["release"]
        verdict: OrderVerdict = await self._activity(
            FounderActivities.judge_order,
            JudgeOrderInput(
                received=inp.order,
                actions=actions,
                subject=subject,
                judged_for=f"session of {v.agent}",
                at=workflow.now(),
            ),
            retry.WRITE,
        )
        if not verdict.accepted:
            return verdict.reason
        if v.governor.hold is not hold:
            return "the hold changed while the order was judged; send it again"
        if hold.kind == "budget":
            # Lifted only once the budget allows more: a release without a raise would hold
            # again at the next report.
            await self._read_budget()
            if v.governor.hold is not hold:
                return "the hold changed while the budget was read; send it again"
            over = governors.over_budget(v.governor, workflow.now())
            if over is not None:
                return f"{over[0]}: raise it first ({inbox.budget_raise_command(v.agent, hold)})"
        governors.release(v.governor, v.task_id)
        if inp.task_closed and v.task_id == inp.task_id:
            v.task_id = None
            governors.change_task(v.governor)
        self._set_search_attributes()
        await self._activity(
            SessionActivities.clear_inbox_items,
            ClearInboxInput(subject=hold.task_id or v.agent, kinds=[inbox.HOLD_KINDS[hold.kind]]),
            retry.WRITE,
        )
        await self._record()
        return None

    @workflow.signal
    async def task_claimed(self, inp: TaskClaimedInput) -> None:
        async with self._lock:
            await self._task_claimed(inp)

    async def _task_claimed(self, inp: TaskClaimedInput) -> None:
        v = self.view
        if self._closing() or v.task_id == inp.task_id:
            return
        # Anyone can send this signal, and switching tasks restarts the cost comparison: take
        # it only from the task's own workflow state.
        claim = TaskClaimedInput(task_id=inp.task_id, agent=v.agent)
        holds: bool = await self._activity(SessionActivities.agent_holds_task, claim, retry.READ)
        if not holds or self._closing() or v.task_id == inp.task_id:
            workflow.logger.warning("session %s: claim of %s not confirmed", v.agent, inp.task_id)
            return
        v.task_id = inp.task_id
        governors.change_task(v.governor)
        self._set_search_attributes()

    @workflow.update
    async def ready(self) -> SessionView:
        await workflow.wait_condition(lambda: self.view.state != SessionState.STARTING)
        return self.view

    @workflow.update
    async def attach(self, inp: AttachInput) -> SessionView:
        if not self._same_runtime(inp.external_id):
            # A runtime session that never ended (its process died): end it in favour of the
            # new one. Its artifact test runs; the caller then starts the next session.
            if self._end is None:
                self._end = EndSessionInput(
                    reason=f"superseded by {inp.runtime} session {inp.external_id}; the previous "
                    "one never ended",
                    by="tether",
                )
            await workflow.wait_condition(lambda: self._finished)
            raise ApplicationError(
                f"the open session of {self.view.agent} ({self.view.external_id}) was ended in "
                f"favour of {inp.external_id}; start the next one",
                type=errors.SESSION_SUPERSEDED,
                non_retryable=True,
            )
        await workflow.wait_condition(lambda: self.view.state != SessionState.STARTING)
        return self.view

    @attach.validator
    def _validate_attach(self, inp: AttachInput) -> None:
        if self._closing():
            raise ApplicationError(
                f"the session of {self.view.agent} has ended; start the next one once its "
                "workflow has closed",
                type=errors.SESSION_ENDED,
                non_retryable=True,
            )

    def _same_runtime(self, external_id: str | None) -> bool:
        current = self.view.external_id
        return not external_id or not current or external_id == current

    @workflow.update
    async def end(self, inp: EndSessionInput) -> SessionView:
        run = self.view.run
        if run is not None and inp.external_id == run.runtime_session:
            # Claude Code's SessionEnd as a process Tether runs exits (`claude -p` ends its
            # session every time, and a process Tether stopped for a hold says it on its way
            # out): Tether decides when this session ends, not the runtime.
            return self.view
        self._end = inp
        await workflow.wait_condition(lambda: self._finished)
        return self.view

    @end.validator
    def _validate_end(self, inp: EndSessionInput) -> None:
        self._check_open()
        self._check_runtime(inp.external_id)

    def _check_runtime(self, external_id: str | None) -> None:
        """A message from another runtime session (a stale or second Claude Code process) is
        not this session's."""
        if not self._same_runtime(external_id):
            raise _refuse(
                f"session {external_id} is not the current session of {self.view.agent} "
                f"({self.view.external_id}); nothing changed"
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
        async with self._lock:
            self._validate_recheck(inp)  # the state may have changed while this waited
            names = [c.name for c in self.view.credentials]
            statuses = await self._probe(names)
            # The forge token may be the one that was rejected: read the forge again too.
            _, _, rejected = await self._read_forge()
            if self._closing():
                raise _refuse(
                    f"the session of {self.view.agent} ended while its credentials were being "
                    "rechecked; nothing changed"
                )
            return await self._settle_recheck(statuses, rejected)

    async def _settle_recheck(
        self, statuses: list[CredentialStatus], rejected: tuple[str, str] | None
    ) -> SessionView:
        bad = [s for s in statuses if not s.ok]
        if not bad and rejected is None:
            self.view.credentials = statuses
            self.view.blocker = None
            self.view.notice = ""
            self.view.state = SessionState.ACTIVE
            self._set_search_attributes()
            await self._activity(
                SessionActivities.clear_credential_blockers, self.view.agent, retry.WRITE
            )
            await self._record()
        else:
            await self._block(statuses, rejected)
        return self.view

    @recheck.validator
    def _validate_recheck(self, inp: RecheckInput) -> None:
        self._check_open()
        if self.view.state != SessionState.BLOCKED or self.view.blocker is None:
            raise _refuse(f"the session of {self.view.agent} is {self.view.state}, not blocked")
        if self.view.blocker.kind != "credential":
            raise _refuse(f"{self.view.blocker.reason}; a recheck cannot fix configuration")

    def _closing(self) -> bool:
        return self.view.state == SessionState.ENDED or self._end is not None

    def _check_open(self) -> None:
        if self._closing():
            raise _refuse(f"the session of {self.view.agent} has ended")

    # --- startup -------------------------------------------------------------------------------

    async def _startup(self) -> None:
        v = self.view
        key = self._session_key()
        if self._spreads() or workflow.patched(FAST_START_PATCH):
            await self._fast_startup(key)
            return
        setup: SessionSetup = await self._activity(
            SessionActivities.session_setup, v.agent, retry.READ
        )
        if await self._configure(setup):
            statuses, truth, forge = await asyncio.gather(
                self._probe(setup.credentials),
                self._read_local_truth(SyncInput(agent=v.agent, session_key=key)),
                self._read_forge(),
            )
            await self._begin(setup, statuses, truth, forge)

    async def _fast_startup(self, key: str) -> None:
        """The agent's setup and its credential probes, concurrently with git, the task table
        and the forge: one activity round trip fewer before the brief."""
        v = self.view

        async def setup_and_probe() -> tuple[SessionSetup, list[CredentialStatus]]:
            setup: SessionSetup = await self._activity(
                SessionActivities.session_setup, v.agent, retry.READ
            )
            return setup, await self._probe(setup.credentials if setup.known else [])

        (setup, statuses), truth, forge = await asyncio.gather(
            setup_and_probe(),
            self._read_local_truth(SyncInput(agent=v.agent, session_key=key)),
            self._read_forge(),
        )
        if await self._configure(setup):
            await self._begin(setup, statuses, truth, forge)

    async def _configure(self, setup: SessionSetup) -> bool:
        """Apply the agent's setup; False (the session blocked) when tether.toml lacks it."""
        v = self.view
        v.deadline = v.started_at + timedelta(hours=setup.max_hours)
        v.governor.limits = setup.limits
        if not setup.known:
            v.blocker = Blocker(
                kind="config", subject=v.agent, reason=setup.problem, since=workflow.now()
            )
            v.notice = v.blocker.message()
            await self._notify(inbox.blocked(v, v.blocker))
            v.state = SessionState.BLOCKED
            self._set_search_attributes()
            await self._record()
            return False
        return True

    async def _begin(
        self,
        setup: SessionSetup,
        statuses: list[CredentialStatus],
        truth: GroundTruth,
        forge: tuple[list[PullRequestInfo], list[str], tuple[str, str] | None],
    ) -> None:
        """Brief the agent from what was read, and open (or block) the session."""
        v = self.view
        prs, forge_problems, rejected = forge
        v.credentials = statuses
        v.branch_tips, v.checked_out = truth.branch_tips, truth.checked_out
        if truth.handoff_state:
            # A session continued after a handoff: its work is judged from where the chain
            # started, so commits made before the handoff still count as its deliverable.
            carried_tips = truth.handoff_state.get("branch_tips")
            if isinstance(carried_tips, dict):
                v.branch_tips = {
                    **v.branch_tips,
                    **{
                        str(repo): {str(b): str(sha) for b, sha in tips.items()}
                        for repo, tips in carried_tips.items()
                        if isinstance(tips, dict)
                    },
                }
            carried_task = truth.handoff_state.get("task_id")
            if v.task_id is None and isinstance(carried_task, str):
                v.task_id = carried_task
            v.handoff_from = str(truth.handoff_state.get("session") or "") or None
        truth = truth.model_copy(
            update={"pull_requests": prs, "problems": [*truth.problems, *forge_problems]}
        )
        unverified = [
            f"credential {s.name} {s.reason}" for s in statuses if s.ok and not s.verified
        ]
        v.brief = compose_brief(v.agent, setup.repositories, truth, unverified, login=setup.login)
        self._resume_holds(truth)
        if v.task_id is None and (self._spreads() or workflow.patched(ADOPTS_CLAIM_PATCH)):
            self._adopt_claimed(truth)
        # The founder hears of overlaps before the agent gets its brief.
        for overlap in v.brief.overlaps:
            await self._notify(inbox.overlap(v, overlap))
        if any(not s.ok for s in statuses) or rejected is not None:
            await self._block(statuses, rejected)
        else:
            v.state = SessionState.ACTIVE
            self._set_search_attributes()
            await self._record()

    def _resume_holds(self, truth: GroundTruth) -> None:
        """A governor's hold outlives the session it stopped: a new session of the same agent
        starts held while one of its tasks is blocked or paused by the governor."""
        v = self.view
        held = [
            t
            for t in truth.tasks
            if t.assignee == v.agent and t.held_by == GOVERNOR and t.state in HOLD_STATES
        ]
        if not held or v.governor.hold is not None:
            return
        task = held[0]
        v.task_id = task.id
        governors.change_task(v.governor)
        v.governor.hold = Hold(
            kind="loop" if task.state == TaskState.BLOCKED else "cost",
            reason=task.hold_reason or f"task {task.id} is {task.state}",
            since=workflow.now(),
            task_id=task.id,
        )
        if v.brief is not None:
            v.brief.text = f"{governors.hold_message(v.governor.hold)}\n\n{v.brief.text}"

    def _adopt_claimed(self, truth: GroundTruth) -> None:
        """A task the agent claimed before this session began is the session's task: its
        failures and spend count against it (the newest claim, when there are several)."""
        v = self.view
        claimed = [t for t in truth.tasks if t.assignee == v.agent and t.state == TaskState.CLAIMED]
        if claimed:
            newest = max(claimed, key=lambda t: t.updated_at or t.created_at or v.started_at)
            v.task_id = newest.id
            governors.change_task(v.governor)

    async def _probe(self, names: list[str]) -> list[CredentialStatus]:
        if not names:
            return []
        try:
            result: list[CredentialStatus] = await self._activity(
                SessionActivities.probe_credentials,
                ProbeInput(agent=self.view.agent, credentials=names),
                retry.PROBE,
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
                    reason=f"could not be probed ({cause_text(err)})",
                    checked_at=now,
                )
                for n in names
            ]

    async def _read_local_truth(self, inp: SyncInput) -> GroundTruth:
        """Git, the task table and the handoff. If they cannot be read the session still starts,
        and the brief says what is missing: nothing here says a credential is bad."""
        try:
            truth: GroundTruth = await self._activity(
                SessionActivities.read_local_truth, inp, retry.SYNC
            )
            return truth
        except ActivityError as err:
            return GroundTruth(
                problems=[f"git and the task table could not be read: {cause_text(err)}"]
            )

    async def _read_forge(self) -> tuple[list[PullRequestInfo], list[str], tuple[str, str] | None]:
        """Open pull requests, problems, and the credential rejection if there was one."""
        try:
            prs, problems = await self._activity(
                SessionActivities.read_forge,
                SyncInput(agent=self.view.agent, session_key=""),
                retry.SYNC,
            )
        except ActivityError as err:
            if (rejected := _rejection(err)) is not None:
                return [], [], rejected
            return [], [f"pull requests could not be read: {cause_text(err)}"], None
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
        await self._stop_process(f"blocked: {v.blocker.describe()}")
        # The founder is told before the agent hears it is blocked.
        await self._notify(inbox.blocked(v, v.blocker))
        v.state = SessionState.BLOCKED
        self._set_search_attributes()
        await self._record()

    # --- end -----------------------------------------------------------------------------------

    async def _check_artifact(self) -> ArtifactResult:
        v = self.view
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
            retry.SYNC,
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
                summary=f"the artifact could not be checked: {cause_text(err)}",
                checked_at=workflow.now(),
            )
        v.artifact_result = result
        # A blocked session could not work; a check that could not run proves nothing.
        v.pseudo_work = (
            could_check
            and not result.passed
            and v.state != SessionState.BLOCKED
            and not self._handed_off
        )
        v.state = SessionState.ENDED
        v.ended_at = workflow.now()
        self._set_search_attributes()
        await self._flush()
        await self._record()
        if v.pseudo_work:
            await self._notify(inbox.pseudo_work(v, result))
        elif not could_check:
            await self._notify(inbox.artifact_unchecked(v, result))
        self._finished = True

    # --- governors ----------------------------------------------------------------------------

    # --- the agent's process ------------------------------------------------------------------

    async def _supervise(self, resume: bool) -> None:
        """Run the agent's process until it finishes, is stopped, or crashes into a loop; a
        crash or a lost worker restarts it, resuming its runtime session, after a backoff."""
        v = self.view
        run = v.run
        if run is None:
            raise ApplicationError("the session has no run to supervise", non_retryable=True)
        while True:
            run.phase = "running"
            self._set_search_attributes()
            if run.current is not None:
                # Carried across continue-as-new: its workflow runs on; its end comes here.
                launch = run.current
            else:
                run.attempts += 1
                launch = AgentLaunch(
                    agent=v.agent,
                    runtime=v.runtime,
                    runtime_session=run.runtime_session,
                    prompt=self._prompt(run, resume),
                    resume=resume,
                    attempt=run.attempts,
                    process=f"{run.runtime_session}:{run.attempts}",
                )
                governors.begin_process(v.governor, launch.process)
            summary = f"{v.agent}'s {v.runtime} process, attempt {launch.attempt}"
            end = await self._one_process(run, launch, timedelta(hours=24), summary)
            if end.stopped:
                step, self._next_step = self._next_step, None
                if step is None:
                    run.phase = "stopped"
                    return
                # A memory stage: the same runtime session goes on, lighter.
                await self._memory_step(run, step)
                resume = True
                continue
            if end.lost:
                outcome = RunOutcome(summary="the worker running it was lost")
            elif end.outcome is None:
                outcome = RunOutcome(summary=f"could not run: {end.failure or 'no outcome'}")
                run.last = outcome
                run.phase = "failed"
                await self._notify(inbox.run_failed(v, outcome.summary))
                return
            else:
                outcome = end.outcome
            run.last = outcome
            run.cost_usd += outcome.cost_usd or 0.0
            if outcome.usage is not None:
                # The runtime's final figures for the process (its own price, what no hook saw):
                # counted like a report, and acted on (a budget or a cost pause crossed now).
                now = workflow.now()
                await self._act_on(
                    governors.apply_runtime(v.governor, outcome.usage, v.task_id, now)
                )
                if v.governor.hold is not None:
                    # Held by what it cost in the end: nothing restarts it.
                    clean = outcome.exit_code == 0 and not outcome.is_error
                    run.phase = "finished" if clean else "stopped"
                    return
            if outcome.exit_code == 0 and not outcome.is_error:
                run.phase = "finished"
                if self._end is None:
                    self._end = EndSessionInput(
                        reason=f"the agent's run finished: {outcome.summary[:200]}", by="tether"
                    )
                return
            # Read only when a process did not finish well: the clean path has no extra step.
            if run.policy is None:
                run.policy = await self._activity(
                    RunnerActivities.run_policy, v.agent, retry.MUST_READ
                )
            policy = run.policy
            if outcome.is_error and outcome.api_status in (401, 403):
                run.phase = "failed"
                names = ", ".join(policy.credentials) or "the model API key"
                await self._block(
                    [],
                    (
                        names,
                        f"was rejected by the model API ({outcome.api_status}): "
                        + outcome.summary[:200],
                    ),
                )
                return
            run.crashes = [*run.crashes, outcome.crash_fingerprint()][-policy.crash_limit :]
            same = len(run.crashes) >= policy.crash_limit and len(set(run.crashes)) == 1
            if same:
                run.phase = "failed"
                hold = Hold(
                    kind="loop",
                    reason=f"the agent's process failed {len(run.crashes)} times the same way "
                    f"({run.crashes[-1]})",
                    since=workflow.now(),
                    task_id=v.task_id,
                    evidence={"crashes": list(run.crashes)},
                )
                v.governor.hold = hold
                await self._hold(hold)  # from the supervisor: its process is over already
                return
            run.phase = "restarting"
            self._set_search_attributes()
            backoff = min(
                policy.restart_backoff_seconds * 2 ** (len(run.crashes) - 1), RESTART_BACKOFF_CAP
            )
            await workflow.sleep(timedelta(seconds=max(backoff, 0.001)))
            resume = True

    async def _memory_step(self, run: AgentRun, step: str) -> None:
        """Between two processes of the same runtime session: compact it (Claude Code's
        `/compact` with Tether's instructions), or resume it with the essential rules only."""
        v = self.view
        pct = v.governor.context_pct or 0
        if step == "compact":
            run.phase = "restarting"
            launch = AgentLaunch(
                agent=v.agent,
                runtime=v.runtime,
                runtime_session=run.runtime_session,
                prompt=f"/compact {COMPACT_INSTRUCTIONS}",
                resume=True,
                attempt=run.attempts,
                process=f"{run.runtime_session}:compact:{run.compactions + 1}",
            )
            governors.begin_process(v.governor, launch.process)
            # The run is not left, nor the compaction interrupted, while it compacts.
            self._unsettled = self._compacting = True
            try:
                end = await self._one_process(
                    run, launch, timedelta(minutes=30), f"{v.agent}: compact at {pct:.0%}"
                )
            finally:
                self._unsettled = self._compacting = False
            if end.outcome is not None:
                run.compactions += 1
            else:
                why = end.failure or ("stopped" if end.stopped else "its worker was lost")
                workflow.logger.warning("%s: compaction failed: %s", v.agent, why)
            self._resume_prompt = (
                f"Tether compacted this session at {pct:.0%} of its context; continue the work "
                "where you stopped."
            )
        else:
            self._resume_prompt = (
                f"Tether: this session's context is {pct:.0%} full. Keep only the essential rules "
                "of your task; do not re-read large files or repeat tool output you no longer "
                "need. Continue the work where you stopped."
            )

    async def _one_process(
        self, run: AgentRun, launch: AgentLaunch, limit: timedelta, summary: str
    ) -> ProcessEnd:
        """Run one process of the agent's to its end: in a workflow of its own, abandoned on
        purpose (the session's next run hears its end), or in runs recorded before that, as
        an activity of this run."""
        if self._own_processes is None:
            self._own_processes = workflow.patched(OWN_PROCESS_PATCH)
        try:
            if not self._own_processes:
                return await self._process_activity(launch, limit, summary)
            stoppable = _Stoppable(process_workflow_id(launch.agent, launch.process))
            self._process = stoppable
            if run.current is None:
                run.current, run.ended = launch, None
                self._unsettled = True
                try:
                    await workflow.start_child_workflow(
                        AgentProcessWorkflow.run,
                        ProcessInput(
                            session_id=workflow.info().workflow_id,
                            launch=launch,
                            timeout_seconds=limit.total_seconds(),
                            summary=summary,
                        ),
                        id=process_workflow_id(launch.agent, launch.process),
                        parent_close_policy=ParentClosePolicy.ABANDON,
                        static_summary=summary,
                    )
                finally:
                    self._unsettled = False
            stoppable.started = True
            await workflow.wait_condition(lambda: run.ended is not None)
            end, run.current, run.ended = run.ended, None, None
            return end or ProcessEnd(process=launch.process, failure="no end was told")
        finally:
            self._process = None
            self._process_ends += 1

    async def _process_activity(
        self, launch: AgentLaunch, limit: timedelta, summary: str
    ) -> ProcessEnd:
        """A process as an activity of this run (runs recorded before processes had their own
        workflows)."""
        self._process = workflow.start_activity_method(
            RunnerActivities.run_agent,
            launch,
            task_queue=self._agents_queue(),
            start_to_close_timeout=limit,
            heartbeat_timeout=RUNNER_HEARTBEAT,
            # Restarts are the supervisor's, with the crash count; a lost worker is one too.
            retry_policy=RetryPolicy(maximum_attempts=1),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=summary,
        )
        try:
            return ProcessEnd(process=launch.process, outcome=await self._process)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                return ProcessEnd(process=launch.process, stopped=True)
            if isinstance(err.cause, ActivityTimeout):
                return ProcessEnd(process=launch.process, lost=True)
            return ProcessEnd(process=launch.process, failure=cause_text(err)[:2_000])

    @workflow.signal
    def process_ended(self, end: ProcessEnd) -> None:
        """The workflow of the agent's process says how it ended (workers only)."""
        run = self.view.run
        if run is not None and run.current is not None and run.current.process == end.process:
            run.ended = end

    async def _interrupt(self, step: str) -> None:
        """End the running process for a memory stage (before the report that crossed it is
        answered), and let the supervisor go on with `step`."""
        runner, process = self._runner, self._process
        if (
            runner is None
            or runner.done()
            or process is None
            or self._compacting
            or self.view.runtime != "claude-code"
        ):
            return
        self._next_step = step
        ends = self._process_ends
        process.cancel()
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                lambda: self._process_ends > ends or runner.done(),
                timeout=RUNNER_STOP_WAIT.total_seconds(),
            )

    def _agents_queue(self) -> str:
        """Where the agents' processes run: the session's queue's `-agents` companion, which
        each worker polls with at most `max_agents` at once."""
        return workflow.info().task_queue + constants.AGENTS_QUEUE_SUFFIX

    def _prompt(self, run: AgentRun, resume: bool) -> str:
        if self._resume_prompt is not None:
            prompt, self._resume_prompt = self._resume_prompt, None
            return prompt
        if resume:
            return (
                "Tether restarted this session after its process ended unexpectedly; continue "
                "the work where it stopped."
            )
        prompt, task_id = run.request.prompt or "Start your work.", run.request.task_id
        if task_id and task_id not in prompt:
            prompt += f" Your task: {task_id}."
        return prompt

    async def _stop_process(self, reason: str, carry: bool = False) -> None:
        """End the agent's process (its whole group) and wait until it is gone."""
        runner, process = self._runner, self._process
        if runner is None or runner.done() or asyncio.current_task() is runner:
            return  # nothing runs, or the supervisor itself is deciding (its process is over)
        if self.view.run is not None and not carry:
            self.view.run.stop_reason = reason
        if process is not None:
            process.cancel()
        else:
            runner.cancel()  # between attempts: nothing runs
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await workflow.wait_condition(
                lambda: runner.done(), timeout=RUNNER_STOP_WAIT.total_seconds()
            )
        if self.view.run is not None:
            self.view.run.phase = "restarting" if carry else "stopped"
        self._set_search_attributes()

    async def _hold(self, hold: Hold) -> None:
        """Loop, cost or budget: end the agent's process if Tether runs it (before the report that
        caused the hold is answered, so no model turn starts after it), hold the task, tell the
        founder; the agent hears it in the answer."""
        v = self.view
        await self._stop_process(f"held by Tether's governor: {hold.reason}")
        if hold.task_id is not None and workflow.patched(HOLD_OWN_TASK_PATCH):
            claim = TaskClaimedInput(task_id=hold.task_id, agent=v.agent)
            holds = await self._activity(SessionActivities.agent_holds_task, claim, retry.READ)
            if not holds:
                # The task's workflow would refuse the hold: the agent alone is held.
                hold.task_id = None
        if hold.task_id is not None:
            await messaging.tell(
                constants.task_workflow_id(hold.task_id),
                "governor_hold",
                GovernorHoldInput(
                    kind=hold.kind, agent=v.agent, reason=hold.reason, evidence=hold.evidence
                ),
            )
        await self._notify(inbox.hold(v, hold))
        self._set_search_attributes()
        await self._record()
        if self._budgets:
            # The spend that led to the hold is in the ledger when the founder looks.
            await self._flush()

    async def _handoff(self) -> None:
        """Archive the session's state to the knowledge base; the session then ends, and the
        next one of this agent starts from the handoff brief."""
        v = self.view
        pct = v.governor.context_pct or 0
        # Tether's own process ends before the report is answered: no turn past the handoff.
        await self._stop_process(f"handoff: context {pct:.0%} full")
        brief, state = governors.handoff_brief(v.agent, v.started_at, v.task_id, v.governor)
        state["branch_tips"] = {repo: dict(tips) for repo, tips in v.branch_tips.items()}
        state["session"] = self._session_key()
        try:
            await self._activity(
                SessionActivities.archive_handoff,
                HandoffInput(
                    agent=v.agent, session_key=self._session_key(), brief=brief, state=state
                ),
                retry.WRITE,
            )
        except ActivityError as err:
            await self._notify(inbox.handoff_failed(v, self._session_key(), cause_text(err)))
        self._handed_off = True
        if self._end is None:
            pct = v.governor.context_pct or 0
            self._end = EndSessionInput(
                reason=f"handoff: context {pct:.0%} full", by="tether", external_id=None
            )

    async def _read_budget(self) -> None:
        """The hard budgets in force and the other sessions' spend (a read that fails keeps the
        last figures: the budget is then judged on those, and read again after the next flush)."""
        g = self.view.governor
        self._budget_stale, self._budget_reading = False, True
        self._budget_day = workflow.now().date().isoformat()
        try:
            g.budget = await self._activity(
                SessionActivities.budget_status,
                BudgetInput(
                    agent=self.view.agent, session_key=self._session_key(), at=workflow.now()
                ),
                retry.READ,
            )
        except ActivityError as err:
            workflow.logger.warning(
                "session %s: budgets could not be read: %s", self.view.agent, cause_text(err)
            )
        finally:
            self._budget_reading = False

    async def _load_budget(self) -> None:
        """Read the budgets; over one, hold the agent (its process ends, the founder is told)."""
        await self._read_budget()
        g = self.view.governor
        if self._closing() or self.view.state != SessionState.ACTIVE:
            return
        held = governors.check_budget(g, workflow.now())
        if held is not None:
            await self._hold(held)

    async def _load_baseline(self) -> None:
        v = self.view
        task_id = v.task_id
        if task_id is None:
            return
        try:
            baseline: CostBaseline = await self._activity(
                SessionActivities.cost_baseline,
                CostBaselineInput(task_id=task_id, session_key=self._session_key()),
                retry.WRITE,
            )
        except ActivityError:
            # Compared against the ceiling rather than not at all.
            baseline = CostBaseline()
        if v.task_id == task_id and v.governor.baseline is None:
            v.governor.baseline = baseline

    async def _flush(self) -> None:
        """Write the cost ledger (cumulative, so a retry is harmless) and the tool-call log."""
        g = self.view.governor
        if not self._governors or g.reports == g.flushed_reports:
            return
        async with self._flush_lock:
            upto, calls = g.reports, list(g.unflushed)
            figures = self._figures_now() if self._recorded and self._keeps_figures() else None
            try:
                await self._activity(
                    SessionActivities.flush_governor,
                    FlushInput(
                        agent=self.view.agent,
                        session_key=self._session_key(),
                        task_costs=dict(g.task_costs),
                        task_tokens=dict(g.task_tokens),
                        calls=calls,
                        day_costs=dict(g.day_costs),
                        figures=FiguresInput(
                            agent=self.view.agent, started_at=self.view.started_at, figures=figures
                        )
                        if figures is not None
                        else None,
                    ),
                    retry.NOTIFY,
                )
            except ActivityError:
                self._flushed_at = workflow.now()
                workflow.logger.warning("session %s: ledger write failed", self.view.agent)
                return
            # Not in a `finally`: a workflow evicted from the cache while it waits here is
            # closed with GeneratorExit, and the workflow's clock cannot be read then.
            self._flushed_at = workflow.now()
            written = {c.seq for c in calls}
            g.unflushed = [c for c in g.unflushed if c.seq not in written]
            g.flushed_reports = upto
            if figures is not None:
                self._shown = figures.shown()
                # The ledger was written: PostgreSQL answers again, local writes resume.
                self._figures_resume_at = None

    def _session_key(self) -> str:
        v = self.view
        return f"{v.agent}:{v.started_at.isoformat()}"

    # --- plumbing ------------------------------------------------------------------------------

    async def _activity(self, fn: Callable[..., Awaitable[T]], arg: Any, preset: retry.Preset) -> T:
        return await workflow.execute_activity_method(
            fn, arg, start_to_close_timeout=preset.timeout, retry_policy=preset.policy
        )

    async def _notify(self, item: InboxItem) -> None:
        try:
            await self._activity(SessionActivities.notify_founder, item, retry.NOTIFY)
        except ActivityError:
            workflow.logger.warning("session %s: could not notify the founder", self.view.agent)

    async def _record(self) -> None:
        info = workflow.info()
        # Writes from interleaved handlers may finish out of order: the row keeps the newest.
        self.view.seq += 1
        try:
            await self._activity(
                SessionActivities.record_session,
                RecordSessionInput(
                    session=self.view.model_copy(deep=True),
                    workflow_id=info.workflow_id,
                    run_id=info.run_id,
                ),
                retry.WRITE,
            )
        except ActivityError:
            workflow.logger.warning("session %s: sessions table write failed", self.view.agent)
        else:
            self._recorded = True

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
        if v.task_id:
            detail += f" · task {v.task_id}"
        if v.blocker:
            detail += f" · {v.blocker.message()}"
        g = v.governor
        if g.hold:
            label = {"loop": "LOOP", "cost": "COST PAUSE", "budget": "BUDGET"}[g.hold.kind]
            detail += f" · {label}: {g.hold.reason}"
        if g.context_pct is not None:
            detail += f" · context {g.context_pct:.0%}"
        if g.cost_usd:
            detail += f" · ${g.cost_usd:.2f}"
        if v.state == SessionState.ENDED and v.artifact_result:
            flag = "PSEUDO-WORK: " if v.pseudo_work else ""
            detail += f" · {flag}{v.artifact_result.summary}"
        workflow.set_current_details(detail)
