"""One process of an agent's, in a workflow of its own (`process-<agent>-<process>`).

The session starts it as a child it abandons on purpose: the session's continue-as-new, a
worker restarting the session's run, a ledger write, none of them touch the agent's process.
It runs the runner's `run_agent` activity once (restarts are the session's decision, with its
crash count), stops it when the session says `stop`, and tells the session how it ended
(`process_ended`), which reaches whichever run of the session is current. Both messages are
sealed by the workers, like every workflow-to-workflow message. A session terminated from
outside ends nothing it abandoned: the runner ends the process when it finds the session is
not open any more (activities/runner.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError
from temporalio.exceptions import TimeoutError as ActivityTimeout
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.runner import RunnerActivities
    from tether import constants
    from tether.contracts import ProcessEnd, ProcessInput, ProcessView, StopInput
    from workflows import messaging
    from workflows.failures import cause_text

# The runner heartbeats every few seconds: a worker lost with the process is known this soon.
HEARTBEAT = timedelta(seconds=5)
# What the session's handler is called (tether.names has the hooks' handler names).
PROCESS_ENDED = "process_ended"


@workflow.defn
class AgentProcessWorkflow:
    @workflow.init
    def __init__(self, inp: ProcessInput) -> None:
        self.view = ProcessView(launch=inp.launch)
        self._stop: StopInput | None = None

    @workflow.run
    async def run(self, inp: ProcessInput) -> ProcessEnd:
        launch = inp.launch
        workflow.upsert_search_attributes([constants.SA_AGENT.value_set(launch.agent)])
        workflow.set_current_details(f"**running** · {inp.summary or launch.process}")
        process = workflow.start_activity_method(
            RunnerActivities.run_agent,
            launch,
            task_queue=workflow.info().task_queue + constants.AGENTS_QUEUE_SUFFIX,
            start_to_close_timeout=timedelta(seconds=inp.timeout_seconds),
            heartbeat_timeout=HEARTBEAT,
            # Restarts are the session's, with the crash count; a lost worker is one too.
            retry_policy=RetryPolicy(maximum_attempts=1),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=inp.summary or None,
        )
        stopping = asyncio.create_task(self._stop_when_told(process))
        end = ProcessEnd(process=launch.process)
        try:
            end.outcome = await process
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                end.stopped = True
            elif isinstance(err.cause, ActivityTimeout):
                end.lost = True
            else:
                end.failure = cause_text(err)[:2_000]
        except asyncio.CancelledError:
            # Cancelled from outside (the Web UI): the process is ended all the same.
            end.stopped = True
        finally:
            stopping.cancel()
        self.view.end = end
        how = "stopped" if end.stopped else "lost" if end.lost else "failed" if end.failure else ""
        workflow.set_current_details(f"**{how or 'ended'}** · {inp.summary or launch.process}")
        await messaging.tell(inp.session_id, PROCESS_ENDED, end)
        return end

    async def _stop_when_told(self, process: workflow.ActivityHandle[object]) -> None:
        await workflow.wait_condition(lambda: self._stop is not None)
        process.cancel()

    @workflow.signal
    def stop(self, inp: StopInput) -> None:
        """The session ends this process (a hold, a stop, a memory stage, its own end)."""
        if self._stop is None:
            self._stop = self.view.stop = inp

    @workflow.query
    def view_process(self) -> ProcessView:
        return self.view
