"""The benchmarks' baseline worker process: trivial workflows on a task queue, no interceptor, no
sandbox, no Tether code. Run by scripts/bench_load.py beside Tether's worker processes.

    python scripts/bare_worker.py ADDRESS TASK_QUEUE
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker


@workflow.defn
class NoopWorkflow:
    """A bare update that does nothing: the baseline of a report."""

    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.count < 0)

    @workflow.update
    async def noop(self, _: int) -> int:
        self.count += 1
        return self.count


@activity.defn
async def bare_check(command: str) -> bool:
    proc = await asyncio.create_subprocess_shell(command)
    return await proc.wait() == 0


@workflow.defn
class BareTask:
    """The baseline of a task's lifecycle: the same round trips, one activity for the check."""

    def __init__(self) -> None:
        self.state = "open"

    @workflow.run
    async def run(self, _: str) -> str:
        await workflow.wait_condition(lambda: self.state == "done")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.state

    @workflow.update
    async def sync(self) -> str:
        return self.state

    @workflow.update
    async def claim(self, agent: str) -> str:
        self.state = "claimed"
        return agent

    @workflow.update
    async def submit(self, agent: str) -> bool:
        passed: bool = await workflow.execute_activity(
            bare_check, "true", start_to_close_timeout=timedelta(seconds=30)
        )
        self.state = "done" if passed else "claimed"
        return passed


def bare_worker(client: Client, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[NoopWorkflow, BareTask],
        activities=[bare_check],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    async with bare_worker(client, task_queue):
        print("worker polling", task_queue, file=sys.stderr, flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
