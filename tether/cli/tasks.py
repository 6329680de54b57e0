"""Tasks: `task create|list|show|claim|submit|cancel|block|unblock|resume`, and `resume`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tether import names as constants
from tether.cli import cockpit
from tether.cli.common import (
    ARTIFACT_FORMS,
    KEY_HELP,
    agent_client,
    agent_option,
    api,
    founder_client,
    founder_order,
    open_store,
    pass_mark,
    print_json,
)
from tether.cli.taskfile import (
    check_against_config,
    checks_from_flags,
    load_task_file,
    spec_from_flags,
)
from tether.config import Settings, load_config
from tether.contracts import (
    TERMINAL_STATES,
    SubmitResult,
    TaskRecord,
    TaskView,
)
from tether.errors import TetherError


def render_view(view: TaskView) -> str:
    return cockpit.render_task(view.model_dump(mode="json"))


def render_record(record: TaskRecord) -> str:
    return cockpit.render_task_record(record.model_dump(mode="json"))


def render_submit(result: SubmitResult) -> str:
    verdict = "DONE" if result.done else f"NOT DONE (task is {result.state})"
    lines = [f"task {result.task_id}: {verdict}"]
    for e in result.evidence:
        tries = f", {e.attempts} attempts" if e.attempts > 1 else ""
        lines.append(
            f"  {pass_mark(e.passed)} [{e.kind}] {e.name}: {e.summary} ({e.duration_ms} ms{tries})"
        )
        if not e.passed and e.output_excerpt:
            excerpt = e.output_excerpt.strip().splitlines()[-10:]
            lines += [f"        {line}" for line in excerpt]
    return "\n".join(lines)


async def cmd_task_create(args: argparse.Namespace, settings: Settings) -> int:
    if args.file:
        spec = load_task_file(Path(args.file))
    else:
        checks = checks_from_flags(
            args.http, args.shell, args.pytest, args.git_commit, args.git_tag, args.check
        )
        spec = spec_from_flags(
            args.id, args.title, args.description, args.assignee, args.artifact, checks, args.kind
        )
    check_against_config(spec, load_config(settings.config_path))
    client = await founder_client(settings)
    view = await api.create_task(client, settings.task_queue, spec)
    if args.wait:
        view = await api.wait_recorded(client, spec.id)
    if args.json:
        print_json(view.model_dump(mode="json"))
    else:
        print(f"created task {spec.id} (workflow {constants.task_workflow_id(spec.id)})")
        print(render_view(view))
    return 0


async def cmd_task_list(args: argparse.Namespace, settings: Settings) -> int:
    from tether.ops.stackfile import database_url

    return await cockpit.task_list(args, database_url(settings))


async def cmd_task_show(args: argparse.Namespace, settings: Settings) -> int:
    record, lagging = None, None
    try:
        store = await open_store(settings)
    except TetherError as exc:
        lagging = str(exc)  # PostgreSQL is out: the workflow still has the task
    else:
        try:
            record = await store.get_task(args.task)
        finally:
            await store.pool.close()
    if record is None or record.task.state not in TERMINAL_STATES:
        # The read model is written behind the workflow: what it lacks, the workflow has.
        try:
            record = await api.task_record(await founder_client(settings), args.task, record)
        except TetherError as exc:
            if record is None:
                raise TetherError(
                    f"no task {args.task!r}; `tether task list` shows the tasks"
                    + (f" ({lagging})" if lagging else "")
                ) from None
            lagging = f"Temporal did not answer: {exc}"
    if lagging:
        print(f"tether: task {args.task}: {lagging}; shown as far as known", file=sys.stderr)
    if args.json:
        print_json(record.model_dump(mode="json"))
    else:
        print(render_record(record))
    return 0


async def cmd_task_claim(args: argparse.Namespace, settings: Settings) -> int:
    if agent_client.agent_token():
        body = {"agent": args.agent}
        view = TaskView.model_validate(
            await agent_client.ask(settings, f"/v1/tasks/{args.task}/claim", body)
        )
    else:
        view = await api.claim_task(await founder_client(settings), args.task, args.agent)
    print(f"task {args.task} is claimed by {view.assignee}")
    return 0


async def cmd_task_submit(args: argparse.Namespace, settings: Settings) -> int:
    if agent_client.agent_token():
        body = {"agent": args.agent, "note": args.note}
        answer = await agent_client.ask(settings, f"/v1/tasks/{args.task}/submit", body, wait=3600)
        result = SubmitResult.model_validate(answer)
    else:
        result = await api.submit_task(
            await founder_client(settings), args.task, args.agent, args.note
        )
    if args.json:
        print_json(result.model_dump(mode="json"))
    else:
        print(render_submit(result))
    return 0 if result.done else 1


def founder_action(
    call_name: str, verb: str, action: str | None
) -> Callable[[argparse.Namespace, Settings], Awaitable[int]]:
    """The founder's command on a task; `call_name` is the tether.client function it calls
    (looked up when it runs, so building the parser imports no Temporal SDK)."""

    async def command(args: argparse.Namespace, settings: Settings) -> int:
        signed = founder_order(args, settings, action, args.task) if action else None
        call: Callable[..., Awaitable[TaskView]] = getattr(api, call_name)
        view = await call(
            await founder_client(settings), args.task, args.by, args.reason or "", order=signed
        )
        print(f"task {args.task} {verb}; it is now {view.state}")
        return 0

    return command


# What each founder's action on a task does (its --help line).
TASK_ACTIONS = {
    "cancel": "close a task without doing it (founder-signed)",
    "block": "hold a task: nobody may claim or submit it until it is unblocked",
    "unblock": "lift a hold on a task, a loop's included (founder-signed)",
    "resume": "resume a task the cost governor paused (founder-signed)",
}


def register(sub: Any) -> None:
    """This module's commands, on the `tether` parser's subcommands."""
    task = sub.add_parser("task", help="create, claim, submit and inspect tasks")
    tsub = task.add_subparsers(dest="task_command", required=True, metavar="ACTION")

    p = tsub.add_parser("create", help="create a task from a TOML file or from flags")
    p.add_argument("--file", "-f", help="task definition (TOML); see `tether init`")
    p.add_argument("--id", help="the task's id: letters, digits, - and _ (required without --file)")
    p.add_argument("--title", help="one line saying what is to be done (required without --file)")
    p.add_argument("--description", default="", help="what the agent should know to do it")
    p.add_argument("--assignee", help="only this agent may claim the task")
    p.add_argument("--kind", help="bugfix, feature, ...: its cost is compared within its kind")
    p.add_argument("--artifact", help=ARTIFACT_FORMS)
    p.add_argument(
        "--http", action="append", default=[], metavar="URL", help="check: GET URL answers 200"
    )
    p.add_argument(
        "--shell", action="append", default=[], metavar="COMMAND", help="check: COMMAND exits 0"
    )
    p.add_argument(
        "--pytest",
        action="append",
        default=[],
        metavar="COMMAND",
        help="check: the test COMMAND passes",
    )
    p.add_argument(
        "--git-commit",
        action="append",
        default=[],
        metavar="REPO:BRANCH[:PATH]",
        help="check: a new commit on BRANCH (touching PATH)",
    )
    p.add_argument(
        "--git-tag",
        action="append",
        default=[],
        metavar="REPO:TAG[:COMMIT]",
        help="check: TAG exists (and points at COMMIT)",
    )
    p.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="JSON",
        help='any check as JSON, e.g. \'{"kind": "http", "url": "...", "expect_status": 204}\'',
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="answer once PostgreSQL has the task too (`tether task list` shows it at once)",
    )
    p.add_argument("--json", action="store_true", help="the task as JSON, for scripts")
    p.set_defaults(func=cmd_task_create)

    p = tsub.add_parser("list", help=cockpit.TASK_LIST_HELP)
    cockpit.add_task_list_arguments(p)
    p.set_defaults(func=cmd_task_list)

    p = tsub.add_parser("show", help="a task with its checks, evidence, spend and history")
    p.add_argument("task", help="the task's id")
    p.add_argument("--json", action="store_true", help="the record as JSON, for scripts")
    p.set_defaults(func=cmd_task_show)

    p = tsub.add_parser("claim", help="take a task (exactly one assignee)")
    p.add_argument("task", help="the task's id")
    agent_option(p, "the agent taking it")
    p.set_defaults(func=cmd_task_claim)

    p = tsub.add_parser("submit", help="say a task is done; Tether runs its checks")
    p.add_argument("task", help="the task's id")
    agent_option(p, "the agent that holds it (only it may submit)")
    p.add_argument("--note", help="kept with the task, but decides nothing")
    p.add_argument("--json", action="store_true", help="the checks' verdicts as JSON")
    p.set_defaults(func=cmd_task_submit)

    for name, call, verb, needs_reason in (
        ("cancel", "cancel_task", "cancelled", False),
        ("block", "block_task", "blocked", True),
        ("unblock", "unblock_task", "unblocked", False),
        ("resume", "resume_task", "resumed", False),
    ):
        p = tsub.add_parser(name, help=TASK_ACTIONS[name])
        p.add_argument("task", help="the task's id")
        p.add_argument("--reason", required=needs_reason, help="why (kept in the task's history)")
        p.add_argument("--by", default="founder", help="who acts (kept in the history)")
        if name != "block":
            p.add_argument("--key", help=KEY_HELP)
        p.set_defaults(func=founder_action(call, verb, None if name == "block" else name))

    p = sub.add_parser("resume", help="resume a task the cost governor paused (founder-signed)")
    p.add_argument("task", help="the task's id")
    p.add_argument("--reason", help="why (kept in the task's history)")
    p.add_argument("--by", default="founder", help="who acts (kept in the history)")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=founder_action("resume_task", "resumed", "resume"))
