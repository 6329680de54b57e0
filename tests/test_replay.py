"""Replay: today's workflows must reproduce the committed histories exactly.

A change that would break running workflows fails here. Regenerate the histories only with a
deliberate, versioned change: `.venv/bin/python scripts/record_histories.py`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tether.contracts import TaskInput, TaskResult
from tether.seals import Trust
from workflows.guard import MessageGuard
from workflows.registry import WORKFLOWS, sandbox

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
HISTORIES_BY_NAME = {p.stem: p for p in HISTORIES}


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_there_are_histories_to_replay() -> None:
    missing = {
        "task_lifecycle",
        "session_lifecycle",
        "session_governed",
        "task_governed",
        "deploy_lifecycle",
        "lock_lifecycle",
    } - set(HISTORIES_BY_NAME)
    assert not missing, f"tests/histories lacks {missing}: run scripts/record_histories.py"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replays_without_nondeterminism(path: Path) -> None:
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        interceptors=[MessageGuard(_trust())],
        workflow_runner=sandbox(),
    )
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=True)
    assert result.replay_failure is None


@workflow.defn(name="TaskWorkflow")
class ReorderedTaskWorkflow:
    """A careless edit: waits before recording the task's creation."""

    @workflow.run
    async def run(self, inp: TaskInput) -> TaskResult:
        await workflow.sleep(timedelta(seconds=1))
        raise AssertionError("replay should have failed before reaching here")


async def test_a_changed_workflow_is_caught_by_replay() -> None:
    replayer = Replayer(
        workflows=[ReorderedTaskWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox(),
    )
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(load(HISTORIES_BY_NAME["task_lifecycle"]))


def _trust() -> Trust:
    # Imported here: the sandbox imports this module again for ReorderedTaskWorkflow, and the
    # test keys are made on import (files, which a workflow may not touch).
    from tests.support import keys

    return keys.TRUST
