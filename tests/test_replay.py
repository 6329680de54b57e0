"""Replay: today's workflows must reproduce the committed histories exactly.

A change that would break running workflows fails here. Regenerate the histories only with a
deliberate, versioned change: `.venv/bin/python scripts/record_histories.py`.

tests/histories/ holds histories from before seals (they replay through patch
`sealed-messages`); tests/histories/sealed/ the same lives with every message sealed, replayed
with the public keys they were recorded with (trust.json): the seal check itself must replay.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tether.contracts import TaskInput, TaskResult
from tether.trust.seals import Trust, parse_public
from workflows.guard import MessageGuard
from workflows.registry import WORKFLOWS, sandbox

FOLDER = Path(__file__).parent / "histories"
SEALED = FOLDER / "sealed"
HISTORIES = sorted(FOLDER.glob("*.json"))
HISTORIES_BY_NAME = {p.stem: p for p in HISTORIES}
# Generations of sealed histories, each recorded after a versioned change: `sealed` (seals),
# `write_behind` (issue 18: the task's read model written behind, sessions' spread writes),
# `cockpit` (issue 18: sessions keep the status's figures in their rows), `quiet` (issue 18: a
# quiet session writes its ledger by a timer).
GENERATIONS = sorted(p.parent for p in FOLDER.glob("*/trust.json"))
# Folders that record one path each rather than the six lifecycles: what each must hold.
# `runner` (issue 29): an agent Tether runs, its processes in workflows of their own (the
# first crashes and is restarted, the founder stops the second).
# `paths` (issue 29): the workflows and paths no lifecycle recorded: an agent's wake round
# that runs it, a session held by the team's budget until the founder's signed raise, the
# webhook delivery of its inbox item (refused once), and the credential watch's reminder.
PATHS = {
    "runner": {"session_runs_agent", "agent_process_crashed", "agent_process_stopped"},
    "paths": {
        "wake_runs_agent",
        "session_budget_held",
        "notify_retried",
        "credential_watch_reminds",
    },
}
SEALED_HISTORIES = sorted(
    p for g in GENERATIONS for p in g.glob("*.json") if p.stem not in ("trust", "ids")
)


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
    assert {g.name for g in GENERATIONS} >= {"sealed", "write_behind", "cockpit", "quiet", *PATHS}
    for generation in GENERATIONS:
        recorded = {p.stem for p in SEALED_HISTORIES if p.parent == generation}
        how = "--runner" if generation.name in PATHS else f"--into {generation.name}"
        assert recorded == PATHS.get(generation.name, set(HISTORIES_BY_NAME)), (
            f"run scripts/record_histories.py {how}"
        )


def _patches(path: Path) -> set[str]:
    """The patches a history's workflow ran with (its core_patch markers)."""
    found = set()
    for event in json.loads(path.read_text())["events"]:
        details = event.get("markerRecordedEventAttributes", {}).get("details", {})
        for payload in details.get("patch-data", {}).get("payloads", []):
            found.add(json.loads(base64.b64decode(payload["data"]))["id"])
    return found


def _local_activities(path: Path) -> list[str]:
    """The local activities a history's workflow ran, in order (core_local_activity markers)."""
    found = []
    for event in json.loads(path.read_text())["events"]:
        attributes = event.get("markerRecordedEventAttributes", {})
        if attributes.get("markerName") == "core_local_activity":
            for payload in attributes["details"]["data"]["payloads"]:
                found.append(json.loads(base64.b64decode(payload["data"]))["activity_type"])
    return found


def test_the_newest_generation_runs_the_newest_paths() -> None:
    """The quiet histories are of the task that writes its read model behind and the session
    that writes its ledger at its own phase (and by a timer once quiet) and keeps its figures
    in its row (one patch each implies the older ones)."""
    newest = FOLDER / "quiet"
    for stem in ("task_lifecycle", "task_governed"):
        assert _patches(newest / f"{stem}.json") == {"task-write-behind"}, stem
        assert "record_task" in _local_activities(newest / f"{stem}.json"), stem
    for stem in ("session_lifecycle", "session_governed"):
        assert _patches(newest / f"{stem}.json") == {"session-quiet-flush"}, stem
        assert "record_figures" in _local_activities(newest / f"{stem}.json"), stem


def test_the_runner_histories_run_the_agents_process_in_its_own_workflow() -> None:
    """The session starts each process as a child workflow (patch session-process-workflow)
    and hears its end as a signal; each process's workflow runs the runner's activity once."""
    session = FOLDER / "runner" / "session_runs_agent.json"
    assert "session-process-workflow" in _patches(session)
    events = [e["eventType"] for e in json.loads(session.read_text())["events"]]
    assert events.count("EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED") == 2
    assert events.count("EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED") == 2  # process_ended, twice
    for stem in ("agent_process_crashed", "agent_process_stopped"):
        history = json.loads((FOLDER / "runner" / f"{stem}.json").read_text())
        scheduled = [
            e["activityTaskScheduledEventAttributes"]["activityType"]["name"]
            for e in history["events"]
            if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
        ]
        assert scheduled[0] == "run_agent" and scheduled.count("run_agent") == 1, stem


def _events(path: Path) -> list[dict[str, object]]:
    events: list[dict[str, object]] = json.loads(path.read_text())["events"]
    return events


def _scheduled(path: Path) -> list[str]:
    return [
        str(e["activityTaskScheduledEventAttributes"]["activityType"]["name"])  # type: ignore[index]
        for e in _events(path)
        if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]


def test_the_paths_histories_hold_the_paths_they_are_named_for() -> None:
    folder = FOLDER / "paths"
    assert _scheduled(folder / "wake_runs_agent.json") == ["wake"]
    held = folder / "session_budget_held.json"
    updates = [
        e["workflowExecutionUpdateAcceptedEventAttributes"]["acceptedRequest"]["input"]["name"]  # type: ignore[index]
        for e in _events(held)
        if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"
    ]
    assert updates == ["attach", "report", "report", "release_hold", "end"]
    assert {"budget_status", "notify_founder", "judge_order"} <= set(_scheduled(held))
    attempts = [
        e["activityTaskStartedEventAttributes"]["attempt"]  # type: ignore[index]
        for e in _events(folder / "notify_retried.json")
        if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_STARTED"
    ]
    assert _scheduled(folder / "notify_retried.json")[0] == "deliver_webhook"
    assert attempts[0] == 2  # the webhook refused the first post
    watch = folder / "credential_watch_reminds.json"
    assert _scheduled(watch) == ["remind_expiring_credentials", "watch_deploy_tags"]


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


@pytest.mark.parametrize(
    "path", SEALED_HISTORIES, ids=[f"{p.parent.name}/{p.stem}" for p in SEALED_HISTORIES]
)
async def test_sealed_histories_replay_with_their_keys(path: Path) -> None:
    # A seal names its workflow: replayed under the id it ran with.
    ids = json.loads((path.parent / "ids.json").read_text())
    history = WorkflowHistory.from_json(ids[path.stem], path.read_text())
    events = json.loads(path.read_text())["events"]
    told = {
        "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED",
        "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED",
    }
    if any(e["eventType"] in told for e in events):
        assert "tether-seal" in history.to_json()  # the messages in it were sealed
    keys = json.loads((path.parent / "trust.json").read_text())
    trust = Trust({role: (parse_public(text),) for role, text in keys.items()})
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        interceptors=[MessageGuard(trust)],
        workflow_runner=sandbox(),
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
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


async def test_a_sealed_history_replayed_with_other_keys_diverges() -> None:
    """The seal check runs in replay too: with keys the messages were not signed with, the
    same history takes another path (the claim is refused) and replay says so."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    ids = json.loads((SEALED / "ids.json").read_text())
    path = SEALED / "task_lifecycle.json"
    history = WorkflowHistory.from_json(ids[path.stem], path.read_text())
    stranger = Ed25519PrivateKey.generate().public_key()
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        interceptors=[MessageGuard(Trust({"founder": (stranger,), "worker": (stranger,)}))],
        workflow_runner=sandbox(),
    )
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(history)
