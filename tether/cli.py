"""The `tether` command: the founder's and the agents' interface.

Exit codes: 0 success; 1 a submitted task is not done (a check failed); 2 bad input or an
unreachable server; 3 refused by the task's workflow (nothing changed).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client

from tether import api, constants
from tether.client import connect
from tether.config import EXAMPLE_CONFIG, Settings, load_config
from tether.contracts import SubmitResult, TaskRecord, TaskState, TaskView
from tether.errors import TetherError
from tether.runtime import run_and_exit, setup_logging, setup_tracing, stop_on_signals
from tether.taskfile import (
    EXAMPLE_TASK,
    check_against_config,
    checks_from_flags,
    load_task_file,
    spec_from_flags,
)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _mark(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def render_view(view: TaskView) -> str:
    spec = view.spec
    lines = [f"task {spec.id}: {spec.title}", f"  state: {view.state}"]
    if view.assignee:
        lines.append(f"  assignee: {view.assignee}")
    if view.hold_reason:
        lines.append(f"  reason: {view.hold_reason}")
    if spec.artifact:
        art = spec.artifact.model_dump(exclude_none=True)
        lines.append("  artifact: " + ", ".join(f"{k}={v}" for k, v in art.items()))
    lines.append(f"  submissions: {view.submissions}")
    evidence = {e.index: e for e in view.last_evidence}
    lines.append("  checks:")
    for i, check in enumerate(spec.checks):
        ev = evidence.get(i)
        status = f"{_mark(ev.passed)}  {ev.summary}" if ev else "not run yet"
        lines.append(f"    [{check.kind}] {check.label(i)}: {status}")
    return "\n".join(lines)


def render_record(record: TaskRecord) -> str:
    lines = [render_view(record.task)]
    if record.task.last_note:
        lines.append(f"  last note from the agent (not evidence): {record.task.last_note}")
    lines.append("  history:")
    for e in record.events:
        moved = f"{e.from_state} -> {e.to_state}" if e.from_state else f"-> {e.to_state}"
        extra = f"  {json.dumps(e.detail)}" if e.detail else ""
        lines.append(f"    {e.at:%Y-%m-%d %H:%M:%S} {e.actor:<10} {e.kind:<20} {moved}{extra}")
    return "\n".join(lines)


def render_submit(result: SubmitResult) -> str:
    verdict = "DONE" if result.done else f"NOT DONE (task is {result.state})"
    lines = [f"task {result.task_id}: {verdict}"]
    for e in result.evidence:
        tries = f", {e.attempts} attempts" if e.attempts > 1 else ""
        lines.append(
            f"  {_mark(e.passed)} [{e.kind}] {e.name}: {e.summary} ({e.duration_ms} ms{tries})"
        )
        if not e.passed and e.output_excerpt:
            excerpt = e.output_excerpt.strip().splitlines()[-10:]
            lines += [f"        {line}" for line in excerpt]
    return "\n".join(lines)


# --- commands ---------------------------------------------------------------------------------


async def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    target = Path(args.path) if args.path else settings.home / "tether.toml"
    if target.exists() and not args.force:
        raise TetherError(f"{target} already exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(EXAMPLE_CONFIG)
    example_task = target.parent / "example-task.toml"
    if not example_task.exists():
        example_task.write_text(EXAMPLE_TASK)
    print(f"wrote {target} and {example_task}; edit them, then `tether up`")
    return 0


async def _client(settings: Settings) -> Client:
    from tether.stack import temporal_address

    return await connect(temporal_address(settings), settings.namespace)


async def cmd_task_create(args: argparse.Namespace, settings: Settings) -> int:
    if args.file:
        spec = load_task_file(Path(args.file))
    else:
        checks = checks_from_flags(
            args.http, args.shell, args.pytest, args.git_commit, args.git_tag, args.check
        )
        spec = spec_from_flags(
            args.id, args.title, args.description, args.assignee, args.artifact, checks
        )
    check_against_config(spec, load_config(settings.config_path))
    client = await _client(settings)
    view = await api.create_task(client, settings.task_queue, spec)
    if args.json:
        _print_json(view.model_dump(mode="json"))
    else:
        print(f"created task {spec.id} (workflow {constants.task_workflow_id(spec.id)})")
        print(render_view(view))
    return 0


async def _store(settings: Settings) -> Any:
    from activities.store import Store, connect_pool
    from tether.stack import database_url

    return Store(await connect_pool(database_url(settings)))


async def cmd_task_list(args: argparse.Namespace, settings: Settings) -> int:
    store = await _store(settings)
    try:
        tasks = await store.list_tasks(
            state=TaskState(args.state) if args.state else None, assignee=args.agent
        )
    finally:
        await store.pool.close()
    if args.json:
        _print_json([t.model_dump(mode="json") for t in tasks])
        return 0
    if not tasks:
        print("no tasks")
        return 0
    print(f"{'ID':<24} {'STATE':<10} {'ASSIGNEE':<14} TITLE")
    for t in tasks:
        print(f"{t.spec.id:<24} {t.state:<10} {t.assignee or '-':<14} {t.spec.title}")
    return 0


async def cmd_task_show(args: argparse.Namespace, settings: Settings) -> int:
    store = await _store(settings)
    try:
        record = await store.get_task(args.task)
    finally:
        await store.pool.close()
    if record is None:
        raise TetherError(f"no task {args.task!r}; `tether task list` shows the tasks")
    if args.json:
        _print_json(record.model_dump(mode="json"))
    else:
        print(render_record(record))
    return 0


async def cmd_task_claim(args: argparse.Namespace, settings: Settings) -> int:
    view = await api.claim_task(await _client(settings), args.task, args.agent)
    print(f"task {args.task} is claimed by {view.assignee}")
    return 0


async def cmd_task_submit(args: argparse.Namespace, settings: Settings) -> int:
    result = await api.submit_task(await _client(settings), args.task, args.agent, args.note)
    if args.json:
        _print_json(result.model_dump(mode="json"))
    else:
        print(render_submit(result))
    return 0 if result.done else 1


def _founder_action(
    call: Callable[[Any, str, str, str], Awaitable[TaskView]], verb: str
) -> Callable[[argparse.Namespace, Settings], Awaitable[int]]:
    async def command(args: argparse.Namespace, settings: Settings) -> int:
        view = await call(await _client(settings), args.task, args.by, args.reason or "")
        print(f"task {args.task} {verb}; it is now {view.state}")
        return 0

    return command


async def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from tether.up import run_stack

    await run_stack(settings, stop_on_signals())
    return 0


# --- parser -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tether", description="Structural guardrails for teams of AI agents."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="start Temporal, PostgreSQL and a worker on this machine")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("init", help="write an example tether.toml and task file")
    p.add_argument("--path", help="where to write tether.toml (default: $TETHER_HOME/tether.toml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_init)

    task = sub.add_parser("task", help="create, claim, submit and inspect tasks")
    tsub = task.add_subparsers(dest="task_command", required=True, metavar="ACTION")

    p = tsub.add_parser("create", help="create a task from a TOML file or from flags")
    p.add_argument("--file", "-f", help="task definition (TOML); see `tether init`")
    p.add_argument("--id")
    p.add_argument("--title")
    p.add_argument("--description", default="")
    p.add_argument("--assignee", help="only this agent may claim the task")
    p.add_argument(
        "--artifact", help="url:URL | file:PATH | deploy:SERVICE | commit:REPO[@BRANCH][:PATH]"
    )
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_create)

    p = tsub.add_parser("list", help="list tasks")
    p.add_argument("--state", choices=[s.value for s in TaskState])
    p.add_argument("--agent", help="only tasks assigned to this agent")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_list)

    p = tsub.add_parser("show", help="a task with its checks, evidence and history")
    p.add_argument("task")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_show)

    p = tsub.add_parser("claim", help="take a task (exactly one assignee)")
    p.add_argument("task")
    p.add_argument("--agent", required=True)
    p.set_defaults(func=cmd_task_claim)

    p = tsub.add_parser("submit", help="say a task is done; Tether runs its checks")
    p.add_argument("task")
    p.add_argument("--agent", required=True)
    p.add_argument("--note", help="kept with the task, but decides nothing")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_submit)

    for name, call, verb, needs_reason in (
        ("cancel", api.cancel_task, "cancelled", False),
        ("block", api.block_task, "blocked", True),
        ("unblock", api.unblock_task, "unblocked", False),
    ):
        p = tsub.add_parser(name, help=f"{name} a task")
        p.add_argument("task")
        p.add_argument("--reason", required=needs_reason)
        p.add_argument("--by", default="founder")
        p.set_defaults(func=_founder_action(call, verb))
    return parser


async def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    setup_tracing(settings.otel_exporter)
    func: Callable[[argparse.Namespace, Settings], Awaitable[int]] = args.func
    return await func(args, settings)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        setup_logging()
    run_and_exit(_run(args))


if __name__ == "__main__":
    main(sys.argv[1:])
