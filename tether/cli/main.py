"""The `tether` command: the founder's and the agents' interface.

Exit codes: 0 success; 1 not done (a check failed, a session ended without its deliverable);
2 bad input or an unreachable server; 3 refused or blocked by a workflow (nothing changed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tether import names as constants
from tether import runtimes
from tether.cli import cockpit
from tether.cli.taskfile import (
    EXAMPLE_TASK,
    artifact_from_flag,
    check_against_config,
    checks_from_flags,
    load_task_file,
    spec_from_flags,
)
from tether.config import EXAMPLE_CONFIG, Settings, describe_validation_error, load_config
from tether.contracts import (
    ENVIRONMENTS,
    TERMINAL_STATES,
    Artifact,
    DeployRequest,
    DeployState,
    DeployView,
    FounderOrder,
    NoteInput,
    Report,
    RunRequest,
    SessionInput,
    SessionState,
    SessionView,
    StopInput,
    SubmitResult,
    TaskRecord,
    TaskView,
)
from tether.errors import TetherError
from tether.names import NAME_PATTERN
from tether.ops.runtime import (
    run_and_exit,
    setup_logging,
    setup_metrics,
    setup_tracing,
    stop_on_signals,
)

if TYPE_CHECKING:
    from temporalio.client import Client


class _Later:
    """A module imported on first use: the read-only commands (task list, inbox, budget show)
    answer from PostgreSQL without importing the Temporal SDK (about 0.5 s of a command)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self._name), attr)


if TYPE_CHECKING:
    # Type-checked as the modules they are: every call below is checked against the client.
    import tether.client as api
    import tether.client.agent as agent_client
else:
    api = _Later("tether.client")
    agent_client = _Later("tether.client.agent")


async def connect(*args: Any, **kw: Any) -> Client:
    from tether.client import connect as connect_now

    return await connect_now(*args, **kw)


ARTIFACT_FORMS = "url:URL | file:PATH | deploy:SERVICE | commit:REPO[@BRANCH][:PATH]"


_print_json = cockpit.print_json


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
    """Temporal, sealing with the founder's key when this machine holds it ($TETHER_HOME/
    founder.key): the founder's commands. Without it, messages that change state are refused."""
    from tether.ops.stackfile import temporal_address
    from tether.trust.keys import founder_signer

    return await connect(
        temporal_address(settings), settings.namespace, signer=founder_signer(settings)
    )


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
    client = await _client(settings)
    view = await api.create_task(client, settings.task_queue, spec)
    if args.wait:
        view = await api.wait_recorded(client, spec.id)
    if args.json:
        _print_json(view.model_dump(mode="json"))
    else:
        print(f"created task {spec.id} (workflow {constants.task_workflow_id(spec.id)})")
        print(render_view(view))
    return 0


async def _store(settings: Settings) -> Any:
    from tether.ops.stackfile import database_url
    from tether.store import Store, connect_pool

    return Store(await connect_pool(database_url(settings)))


@contextlib.asynccontextmanager
async def _opened_store(settings: Settings) -> AsyncIterator[Any]:
    """The read model for one command, closed when it is done."""
    store = await _store(settings)
    try:
        yield store
    finally:
        await store.pool.close()


async def cmd_task_list(args: argparse.Namespace, settings: Settings) -> int:
    from tether.ops.stackfile import database_url

    return await cockpit.task_list(args, database_url(settings))


async def cmd_task_show(args: argparse.Namespace, settings: Settings) -> int:
    record, lagging = None, None
    try:
        store = await _store(settings)
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
            record = await api.task_record(await _client(settings), args.task, record)
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
        _print_json(record.model_dump(mode="json"))
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
        view = await api.claim_task(await _client(settings), args.task, args.agent)
    print(f"task {args.task} is claimed by {view.assignee}")
    return 0


async def cmd_task_submit(args: argparse.Namespace, settings: Settings) -> int:
    if agent_client.agent_token():
        body = {"agent": args.agent, "note": args.note}
        answer = await agent_client.ask(settings, f"/v1/tasks/{args.task}/submit", body, wait=3600)
        result = SubmitResult.model_validate(answer)
    else:
        result = await api.submit_task(await _client(settings), args.task, args.agent, args.note)
    if args.json:
        _print_json(result.model_dump(mode="json"))
    else:
        print(render_submit(result))
    return 0 if result.done else 1


KEY_HELP = "the founder's private key (default $TETHER_HOME/founder.key)"


def _founder_order(
    args: argparse.Namespace, settings: Settings, action: str, subject: str
) -> FounderOrder | None:
    """An order signed with the founder's key (--key, else $TETHER_HOME/founder.key if it
    exists): what lifts a governor's hold. Without a key the action goes unsigned, which is
    enough for holds the founder set but refused for the governors'."""
    from tether.trust.signing import load_private, order

    path = _founder_key(args, settings)
    if path is None:
        return None
    return order(action, subject, args.by, args.reason or "", load_private(path))


def _founder_key(args: argparse.Namespace, settings: Settings) -> Path | None:
    """The founder's private key file: --key, else $TETHER_HOME/founder.key if it exists."""
    from tether.trust.signing import PRIVATE_KEY_FILE

    if getattr(args, "key", None):
        return Path(args.key)
    path = settings.home / PRIVATE_KEY_FILE
    return path if path.exists() else None


def _founder_action(
    call_name: str, verb: str, action: str | None
) -> Callable[[argparse.Namespace, Settings], Awaitable[int]]:
    """The founder's command on a task; `call_name` is the tether.client function it calls
    (looked up when it runs, so building the parser imports no Temporal SDK)."""

    async def command(args: argparse.Namespace, settings: Settings) -> int:
        signed = _founder_order(args, settings, action, args.task) if action else None
        call: Callable[..., Awaitable[TaskView]] = getattr(api, call_name)
        view = await call(
            await _client(settings), args.task, args.by, args.reason or "", order=signed
        )
        print(f"task {args.task} {verb}; it is now {view.state}")
        return 0

    return command


def render_session(view: SessionView) -> str:
    lines = [f"session of {view.agent}: {view.state}"]
    if view.external_id:
        lines.append(f"  runtime: {view.runtime} session {view.external_id}")
    if view.started_at:
        lines.append(f"  started: {view.started_at:%Y-%m-%d %H:%M:%S} UTC")
    for c in view.credentials:
        mark = "ok" if c.ok else "BAD"
        expiry = f" (expires {c.expires_at:%Y-%m-%d})" if c.expires_at else ""
        lines.append(f"  credential {c.name}: {mark}, {c.reason}{expiry}")
    if view.blocker:
        lines.append(f"  {view.blocker.message()}")
    g = view.governor
    if g.reports:
        context = f"{g.context_pct:.0%}" if g.context_pct is not None else "unknown"
        lines.append(
            f"  governors: {g.tool_calls} tool calls ({g.failures} failed), context {context}, "
            f"${g.cost_usd:.2f} spent"
        )
        if g.directive_counts:
            issued = ", ".join(f"{k} x{n}" for k, n in sorted(g.directive_counts.items()))
            lines.append(f"  directives: {issued}")
    if view.task_id:
        lines.append(f"  task: {view.task_id}")
    if g.hold:
        what = "LOOP" if g.hold.kind == "loop" else "COST PAUSE"
        lines.append(f"  {what}: {g.hold.reason}")
    if view.state == SessionState.ENDED:
        lines.append(f"  ended: {view.end_reason} (by {view.ended_by})")
    if view.artifact_result:
        verdict = "PSEUDO-WORK" if view.pseudo_work else _mark(view.artifact_result.passed)
        lines.append(f"  artifact: {verdict}  {view.artifact_result.summary}")
    if view.run is not None:
        r = view.run
        lines.append(
            f"  run by Tether: {r.phase}, attempt {r.attempts}, runtime session "
            f"{r.runtime_session}, ${r.cost_usd:.2f} by the runtime's own count"
        )
        if r.stop_reason:
            lines.append(f"    stopped: {r.stop_reason}")
        if r.last is not None and r.last.summary:
            lines.append(f"    last process: {r.last.summary[:200]}")
    return "\n".join(lines)


def _workers_here(settings: Settings) -> bool:
    """The workers that would run an agent are on this machine (Temporal on loopback): whether
    this host can sandbox is known here. On a cluster the worker's run says so itself."""
    from tether.ops.stackfile import temporal_address

    host = temporal_address(settings).rpartition(":")[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """A founder action: start the agent's process now, in its session."""
    config = load_config(settings.config_path)
    agent = config.agent(args.agent)
    if agent is None:
        known = ", ".join(a.name for a in config.agents) or "none"
        raise TetherError(f"agent {args.agent!r} is not in tether.toml (agents: {known})")
    if agent.isolation == "sandbox" and _workers_here(settings):
        from tether.ops.sandbox import require_sandbox

        require_sandbox(agent.name)  # the one line, before anything is asked of Temporal
    request = RunRequest(prompt=args.prompt or "", task_id=args.task, by=args.by)
    view = await api.run_agent(
        await _client(settings), settings.task_queue, agent.name, agent.runtime, request
    )
    print(render_session(view))
    return 0


# What an interactive command run with `tether sandbox` keeps of the founder's terminal.
TERMINAL = ("TERM", "COLORTERM", "LANG", "LC_ALL", "COLUMNS", "LINES")


async def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    """A founder action: run COMMAND in the agent's sandbox, with the agent's token and
    gateway, on this terminal (the walls `tether run` gives the agent)."""
    from activities.escalation import InvalidInput
    from activities.runner import RunnerActivities

    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not argv:
        raise TetherError("say what to run: tether sandbox AGENT -- COMMAND [ARG...]")
    config = load_config(settings.config_path)
    store = await _store(settings)
    runner = RunnerActivities(store, config, settings)
    terminal = {k: os.environ[k] for k in TERMINAL if k in os.environ}
    try:
        return await runner.by_hand(args.agent, argv, terminal)
    except InvalidInput as exc:
        raise TetherError(str(exc)) from exc
    finally:
        await store.pool.close()


async def cmd_stop(args: argparse.Namespace, settings: Settings) -> int:
    """A founder action: end the agent's process group now."""
    request = StopInput(reason=args.reason or "stopped by the founder", by=args.by)
    view = await api.stop_agent(await _client(settings), args.agent, request)
    print(render_session(view))
    return 0


async def cmd_session_start(args: argparse.Namespace, settings: Settings) -> int:
    artifact = Artifact.model_validate(artifact_from_flag(args.artifact)) if args.artifact else None
    inp = SessionInput(agent=args.agent, artifact=artifact, task_id=args.task, runtime="cli")
    view = await api.start_session(await _client(settings), settings.task_queue, inp)
    if args.json:
        _print_json(view.model_dump(mode="json"))
    elif view.state == SessionState.BLOCKED:
        print(view.notice)
    else:
        print(view.brief.text if view.brief else render_session(view))
    return 3 if view.state == SessionState.BLOCKED else 0


async def cmd_session_show(args: argparse.Namespace, settings: Settings) -> int:
    view = await api.session_view(await _client(settings), args.agent)
    if view is None:
        raise TetherError(f"{args.agent} has never had a session")
    if args.json:
        _print_json(view.model_dump(mode="json"))
    else:
        print(render_session(view))
        if view.brief and view.state != SessionState.ENDED:
            print("\n" + view.brief.text)
    return 0


async def cmd_session_end(args: argparse.Namespace, settings: Settings) -> int:
    view = await api.end_session(await _client(settings), args.agent, args.reason, args.by)
    print(render_session(view))
    return 1 if view.pseudo_work else 0


async def cmd_agent_token(args: argparse.Namespace, settings: Settings) -> int:
    """A founder action: mint (or rotate) an agent's token; shown once, stored as a hash."""
    config = load_config(settings.config_path)
    if config.agents and config.agent(args.agent) is None:
        known = ", ".join(a.name for a in config.agents)
        raise TetherError(f"agent {args.agent!r} is not in tether.toml (agents: {known})")
    if not re.fullmatch(NAME_PATTERN, args.agent):
        raise TetherError(
            f"{args.agent!r} is not an agent name (1 to 64 lower-case letters, digits, '.', '_' "
            "or '-')"
        )
    async with _opened_store(settings) as store:
        token = await store.mint_agent_token(args.agent, args.by, rotate=args.rotate)
    what = "rotated: its earlier tokens no longer work" if args.rotate else "minted"
    print(f"token for {args.agent} {what}; it is shown only now (Tether keeps a hash):")
    print(token)
    print(f"give it to {args.agent}'s runtime as TETHER_AGENT_TOKEN, never in a file in a repo")
    return 0


async def cmd_agent_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async with _opened_store(settings) as store:
        revoked = await store.revoke_agent_tokens(args.agent, args.by)
    if not revoked:
        raise api.Refused(f"{args.agent} has no token to revoke")
    print(f"revoked {revoked} token(s) of {args.agent}")
    return 0


async def cmd_agent_tokens(args: argparse.Namespace, settings: Settings) -> int:
    async with _opened_store(settings) as store:
        rows = await store.agent_tokens(args.agent)
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no agent tokens; mint one with: tether agent token AGENT")
        return 0
    for r in rows:
        state = (
            f"revoked {r['revoked_at']:%Y-%m-%d %H:%M} by {r['revoked_by']}"
            if r["revoked_at"]
            else "active"
        )
        used = f"{r['last_used_at']:%Y-%m-%d %H:%M}" if r["last_used_at"] else "never"
        print(f"{r['agent']:<16} {r['prefix']}…  {state:<36} last used {used}")
    return 0


async def cmd_session_recheck(args: argparse.Namespace, settings: Settings) -> int:
    view = await api.recheck_session(await _client(settings), args.agent, args.by)
    print(render_session(view))
    return 3 if view.state == SessionState.BLOCKED else 0


async def cmd_session_list(args: argparse.Namespace, settings: Settings) -> int:
    store = await _store(settings)
    try:
        rows = await store.list_sessions(agent=args.agent)
        counts = await store.pseudo_work_counts()
    finally:
        await store.pool.close()
    if args.json:
        _print_json({"sessions": rows, "pseudo_work": counts})
        return 0
    if not rows:
        print("no sessions")
        return 0
    print(f"{'AGENT':<14} {'STATE':<8} {'STARTED':<17} {'ARTIFACT':<12} DETAIL")
    for r in rows:
        result = r["artifact_result"] or {}
        flag = "PSEUDO-WORK" if r["pseudo_work"] else ("ok" if result.get("passed") else "-")
        detail = (r["blocker"] or {}).get("reason") or result.get("summary") or ""
        print(
            f"{r['agent']:<14} {r['state']:<8} {r['started_at']:%Y-%m-%d %H:%M} {flag:<12} {detail}"
        )
    if counts:
        print("\npseudo-work per agent (flagged / ended sessions):")
        for agent, (flagged, ended) in counts.items():
            print(f"  {agent:<14} {flagged} / {ended}")
    return 0


async def cmd_session_note(args: argparse.Namespace, settings: Settings) -> int:
    kind, text = (
        ("decision", args.decision)
        if args.decision
        else ("question", args.question)
        if args.question
        else ("note", args.text)
    )
    if not text:
        raise TetherError("say what to note: TEXT, --decision TEXT or --question TEXT")
    inp = NoteInput(kind=kind, text=text)
    if agent_client.agent_token():
        body = {"agent": args.agent, **inp.model_dump(mode="json")}
        view = SessionView.model_validate(
            await agent_client.ask(settings, "/v1/session/note", body)
        )
    else:
        view = await api.note_session(await _client(settings), args.agent, inp)
    print(f"noted for {args.agent}'s handoff ({len(view.governor.notes)} notes)")
    return 0


async def cmd_session_release(args: argparse.Namespace, settings: Settings) -> int:
    signed = _founder_order(args, settings, "release", args.agent)
    view = await api.release_session(
        await _client(settings), args.agent, args.by, args.reason, order=signed
    )
    print(render_session(view))
    return 0


async def cmd_budget_raise(args: argparse.Namespace, settings: Settings) -> int:
    """A founder action: raise the agent's daily or the team's monthly budget, signed."""
    from tether.client.budgets import raise_budget
    from tether.trust.signing import PRIVATE_KEY_FILE

    if (args.agent is None) == (args.team_monthly is None):
        raise TetherError("say which budget: --agent NAME --daily USD, or --team-monthly USD")
    if args.agent is not None and args.daily is None:
        raise TetherError(f"say {args.agent}'s new daily budget: --daily USD")
    config = load_config(settings.config_path)
    if _founder_key(args, settings) is None:
        raise TetherError(
            f"a budget is raised only with the founder's key: none at --key or "
            f"{settings.home / PRIVATE_KEY_FILE}"
        )

    def sign(action: str, subject: str) -> FounderOrder:
        signed = _founder_order(args, settings, action, subject)
        assert signed is not None
        return signed

    store = await _store(settings)
    try:
        outcome = await raise_budget(
            await _client(settings),
            store,
            config,
            sign,
            args.daily if args.agent is not None else args.team_monthly,
            agent=args.agent,
            by=args.by,
            reason=args.reason or "",
        )
    finally:
        await store.pool.close()
    print(f"budget {outcome.scope} raised to ${outcome.limit_usd:.2f} (signed by {args.by})")
    for agent, said in outcome.sessions.items():
        print(f"  {agent}: {said}")
    still = [a for a, said in outcome.sessions.items() if said != "released"]
    return 3 if still else 0


async def cmd_budget_show(args: argparse.Namespace, settings: Settings) -> int:
    from tether.budgets import budget_lines
    from tether.cli.render import render_budgets

    config = load_config(settings.config_path)
    store = await _store(settings)
    try:
        lines = await budget_lines(store, config)
    finally:
        await store.pool.close()
    if args.json:
        _print_json([line.model_dump(mode="json") for line in lines])
    else:
        print("\n".join(render_budgets([b.model_dump(mode="json") for b in lines])))
    return 0


async def cmd_session_report(args: argparse.Namespace, settings: Settings) -> int:
    raw = sys.stdin.read()
    try:
        inp = Report.model_validate_json(raw or "{}")
    except ValidationError as exc:
        raise TetherError(describe_validation_error(exc, "the report on stdin")) from exc
    answer = await api.report(await _client(settings), args.agent, inp)
    _print_json(answer.model_dump(mode="json"))
    return 3 if answer.deny else 0


# --- deployments and the founder's key ----------------------------------------------------------


def render_deploy(view: DeployView, trail: list[dict[str, Any]] | None = None) -> str:
    r = view.request
    commit = view.commit[:12] if view.commit else "?"
    lines = [
        f"deployment {view.deployment_id}: {view.state}",
        f"  {r.service} to {r.environment} at {r.ref} ({commit}), requested by {r.agent}",
    ]
    if view.state == DeployState.QUEUED:
        lock = "holds the lock" if view.holds_lock else "waits for the lock"
        approval = "approved" if view.approval else "waits for the founder's approval"
        if view.approval and view.approval.tag:
            approval += f" with {view.approval.tag}"
        lines.append(f"  {lock}; {approval} (tether approve {view.deployment_id})")
        if view.waiting_for:
            lines.append(f"  waits: {view.waiting_for}")
    for refusal in view.approval_refusals:
        lines.append(f"  approval refused: {refusal}")
    if view.reason:
        lines.append(f"  {view.reason}")
    if view.rollout:
        lines.append(f"  rollout: {view.rollout.summary}")
    for e in view.health:
        lines.append(f"  {_mark(e.passed)} health {e.name}: {e.summary}")
    for row in trail or []:
        detail = row["detail"].get("reason") or row["detail"].get("summary") or ""
        lines.append(f"  {row['at']:%H:%M:%S} {row['kind']:<18} {row['actor']:<10} {detail}")
    return "\n".join(lines)


async def cmd_deploy_request(args: argparse.Namespace, settings: Settings) -> int:
    req = DeployRequest(
        service=args.service,
        ref=args.ref,
        agent=args.agent,
        reason=args.reason,
        environment=args.env,
    )
    view = await api.request_deploy(await _client(settings), settings.task_queue, req)
    if args.json:
        _print_json(view.model_dump(mode="json"))
    else:
        print(render_deploy(view))
    return 3 if view.state in (DeployState.REFUSED, DeployState.EXPIRED) else 0


async def cmd_deploy_show(args: argparse.Namespace, settings: Settings) -> int:
    view = await api.deploy_view(await _client(settings), args.deployment)
    store = await _store(settings)
    try:
        trail = await store.audit_trail(deployment_id=args.deployment)
    finally:
        await store.pool.close()
    if args.json:
        _print_json({"deployment": view.model_dump(mode="json"), "audit": trail})
    else:
        print(render_deploy(view, trail))
    return 0


async def cmd_deploy_queue(args: argparse.Namespace, settings: Settings) -> int:
    lock = await api.deploy_queue(await _client(settings), args.service, args.env)
    if args.json:
        _print_json(lock.model_dump(mode="json"))
        return 0
    if lock.holder is None:
        print(f"{lock.service}: free")
    else:
        until = f", lease until {lock.lease_until:%H:%M:%S} UTC" if lock.lease_until else ""
        print(f"{lock.service}: held by {lock.holder.deployment_id} ({lock.holder.agent}){until}")
    for n, w in enumerate(lock.waiting, 1):
        print(f"  {n}. {w.deployment_id} ({w.agent}, since {w.requested_at:%H:%M:%S})")
    return 0


async def cmd_keygen(args: argparse.Namespace, settings: Settings) -> int:
    from tether.trust.keys import write_key

    path, public = write_key(settings.home, args.role, force=args.force)
    if args.role == "founder":
        print(f"private key: {path} (mode 600; keep it on the founder's machine only)")
        print("add the public key to tether.toml and restart the workers:\n")
        print(f'[founder]\npublic_key = "{public}"')
    elif args.role == "gateway":
        print(f"private key: {path} (mode 600; only the gateway reads it: TETHER_GATEWAY_KEY)")
        print("add the public key to tether.toml and restart the workers:\n")
        print(f'[gateway]\npublic_key = "{public}"')
    else:
        print(f"private key: {path} (mode 600): give the same file to every worker process ")
        print("(TETHER_WORKER_KEY); workers derive its public half themselves")
    return 0


def _founder_tag(
    settings: Settings, view: DeployView, key: Any, by: str
) -> tuple[str | None, bool, str]:
    """The founder's signed staging tag on the deployment's commit, when the service wants one
    (`signed_tags`, the default): (tag, pushed, where)."""
    config = load_config(settings.config_path)
    service = config.services.get(view.request.service)
    if service is None:
        raise TetherError(
            f"service {view.request.service!r} is not in this machine's tether.toml: the "
            "approval's tag is made in the service's repository, which it names"
        )
    if not service.signed_tags:
        return None, False, ""
    repo = config.repositories[service.repository]
    tag, pushed = api.tag_approval(view, Path(repo.path), repo.remote, key, by)
    return tag, pushed, (repo.remote if pushed else repo.path) or repo.path


def _decide(decision: str) -> Callable[[argparse.Namespace, Settings], Awaitable[int]]:
    async def command(args: argparse.Namespace, settings: Settings) -> int:
        from datetime import timedelta

        from tether.trust.signing import PRIVATE_KEY_FILE, load_private, sign

        key = load_private(Path(args.key) if args.key else settings.home / PRIVATE_KEY_FILE)
        client = await _client(settings)
        view = await api.deploy_view(client, args.deployment)
        ttl = timedelta(minutes=args.expires_in) if getattr(args, "expires_in", None) else None
        # Refuses a deployment that is over before any tag is made.
        approval = api.prepare_approval(
            view, decision=decision, by=args.by, reason=args.reason or "", ttl=ttl
        )
        if decision == "approve":
            tag, pushed, where = _founder_tag(settings, view, key, args.by)
            if tag:
                said = f"signed tag {tag} on {(view.commit or '')[:12]}" + (
                    f", pushed to {where}" if pushed else f" (in {where}: no remote to push to)"
                )
                # With --print the approval's JSON is the output: the tag line goes aside.
                print(said, file=sys.stderr if getattr(args, "print", False) else sys.stdout)
                approval = approval.model_copy(update={"tag": tag})
        signed = sign(approval, key)
        if getattr(args, "print", False):
            # For the Web UI: send a signal named "approve" to the deployment with this input.
            print(json.dumps(signed.model_dump(mode="json")))
            return 0
        verdict = await api.submit_approval(client, args.deployment, signed)
        if not verdict.accepted:
            print(f"refused: {verdict.reason}", file=sys.stderr)
            return 3
        verb = "approved" if decision == "approve" else "rejected"
        what = f"{view.request.service} {view.request.ref} {(view.commit or '')[:12]}"
        print(f"{args.deployment} {verb} ({what}), valid until {signed.expires_at:%H:%M:%S} UTC")
        return 0

    return command


async def cmd_inbox(args: argparse.Namespace, settings: Settings) -> int:
    if args.inbox_command != "done":
        from tether.ops.stackfile import database_url

        return await cockpit.inbox(args, database_url(settings))
    store = await _store(settings)
    try:
        cleared = await store.acknowledge(args.ids)
        if cleared:
            print("cleared " + ", ".join(f"#{i}" for i in cleared))
        refused = sorted(set(args.ids) - set(cleared))
        for item_id in refused:
            item = await store.inbox_item(item_id)
            if item is not None and item.cleared_at is None:
                why = f"it is cleared by acting on it: {item.command}"
            else:
                why = "not open (already cleared, or no such item); see `tether inbox --all`"
            print(f"#{item_id}: {why}", file=sys.stderr)
        return 3 if refused else 0
    finally:
        await store.pool.close()


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from tether.ops.stackfile import database_url

    return await cockpit.status(args, database_url(settings), settings.config_path, settings.home)


async def cmd_hooks_install(args: argparse.Namespace, settings: Settings) -> int:
    from tether.hook.install import install

    config = load_config(settings.config_path)
    agent = config.agent(args.agent)
    if agent is None and config.agents:
        known = ", ".join(a.name for a in config.agents)
        raise TetherError(f"agent {args.agent!r} is not in tether.toml (agents: {known})")
    fail_closed = agent.fail_closed if agent else True
    if args.fail_open:
        fail_closed = False
    from tether.client.agent import gateway_url

    gateway = args.gateway or gateway_url(settings)
    if runtimes.get(args.runtime).hook_file is not None:
        from tether.hook.install import install_runtime

        try:
            path = install_runtime(
                args.runtime, Path(args.project), args.agent, sys.executable, fail_closed, gateway
            )
        except ValueError as exc:
            raise TetherError(str(exc)) from exc
        mode = "fail closed" if fail_closed else "fail open"
        print(
            f"wrote Tether's {args.runtime} hooks for {args.agent} into {path} ({mode}; "
            f"gateway {gateway})"
        )
        print(
            f"the agent's environment needs TETHER_AGENT_TOKEN: `tether agent token {args.agent}` "
            "mints it (never write it into the repository)"
        )
        return 0
    try:
        path = install(
            Path(args.project), args.agent, sys.executable, fail_closed, gateway, args.transport
        )
    except ValueError as exc:
        raise TetherError(str(exc)) from exc
    mode = "fail closed" if fail_closed else "fail open"
    how = (
        "every event through the `tether hook` command"
        if args.transport == "command"
        else "HTTP hooks"
        + (
            " (SessionStart, Stop and PreToolUse through the `tether hook` command, which"
            " denies when the gateway is down)"
            if fail_closed
            else " (SessionStart and Stop through the `tether hook` command)"
        )
    )
    print(f"wrote Tether's hooks for {args.agent} into {path} ({mode}; {how}; gateway {gateway})")
    print(
        f"the agent's environment needs TETHER_AGENT_TOKEN: `tether agent token {args.agent}` "
        "mints it (never write it into the repository)"
    )
    return 0


async def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    """Serve Tether's MCP tools over stdio for the agent whose token is in the environment."""
    from tether.gateway.mcp import build_server

    if not agent_client.agent_token():
        raise TetherError(
            f"{agent_client.TOKEN_ENV} is not set: `tether mcp` speaks for the agent whose token "
            "is in its environment (the founder mints it: tether agent token AGENT)"
        )

    async def door(action: str, body: dict[str, Any], task: str | None) -> Any:
        path = f"/v1/tasks/{task}/{action}" if task else f"/v1/session/{action}"
        return await agent_client.ask(settings, path, body)

    await build_server(lambda ctx: door).run_stdio_async()
    return 0


async def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from tether.cli.demo_run import demo_after_up
    from tether.ops.up import run_stack

    await run_stack(settings, stop_on_signals(), demo=args.demo, after_up=demo_after_up)
    return 0


async def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from tether.gateway.server import serve

    await serve(settings, stop_on_signals())
    return 0


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from tether.cli.demo_run import run_demo
    from tether.cli.demo_runtime import find_claude
    from tether.cli.render import stdout_colour
    from tether.ops.stackfile import read_stack_file

    claude = find_claude(args.claude) if args.runtime == "claude-code" else None
    client = await _client(settings)
    store = await _store(settings)
    stack = read_stack_file(settings.home) or {}
    try:
        result = await run_demo(
            client,
            store,
            settings.home,
            namespace=settings.namespace,
            web_ui=str(stack.get("web_ui") or f"http://localhost:{settings.ui_port}"),
            colour=stdout_colour(args.color),
            print_line=lambda line: print(line, flush=True),
            claude=claude,
        )
    finally:
        await store.pool.close()
    if not result.ok:
        print(
            f"{len(result.incidents) - result.caught} guardrail(s) did not act: see above",
            file=sys.stderr,
        )
        return 1
    return 0


# --- parser -----------------------------------------------------------------------------------


_colour_option = cockpit.colour_option


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tether", description="Structural guardrails for teams of AI agents."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("up", help="start Temporal, PostgreSQL and a worker on this machine")
    p.add_argument(
        "--demo",
        nargs="?",
        const="always",
        default="never",
        choices=("always", "first", "never"),
        help="once up, replay the seven incidents (`tether demo`) and keep serving the demo "
        "team: always, or only the first time (no demo under TETHER_HOME yet)",
    )
    p.add_argument(
        "--verbose", action="store_true", help="libraries' INFO logs too (every HTTP request)"
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser(
        "mcp",
        help="serve Tether's MCP tools over stdio, for the agent whose TETHER_AGENT_TOKEN is set "
        "(the gateway serves the same over streamable HTTP at /mcp)",
    )
    p.set_defaults(func=cmd_mcp)

    p = sub.add_parser(
        "gateway",
        help="serve the agents' gateway (TETHER_GATEWAY_BIND; `tether up` runs one itself)",
    )
    p.set_defaults(func=cmd_gateway)

    p = sub.add_parser(
        "demo",
        help="replay the seven production incidents against the running stack; exit 1 if any "
        "guardrail did not act",
    )
    p.add_argument(
        "--runtime",
        choices=("scripted", "claude-code"),
        default="scripted",
        help="scripted: the agents are scripted clients of Tether (the default); claude-code: "
        "each agent is the real Claude Code CLI, run by Tether against a scripted model server "
        "on 127.0.0.1 (offline)",
    )
    p.add_argument("--claude", help="the Claude Code CLI (default: claude on PATH)")
    _colour_option(p)
    p.set_defaults(func=cmd_demo)

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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_task_create)

    p = tsub.add_parser("list", help=cockpit.TASK_LIST_HELP)
    cockpit.add_task_list_arguments(p)
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
        ("cancel", "cancel_task", "cancelled", False),
        ("block", "block_task", "blocked", True),
        ("unblock", "unblock_task", "unblocked", False),
        ("resume", "resume_task", "resumed", False),
    ):
        p = tsub.add_parser(name, help=f"{name} a task")
        p.add_argument("task")
        p.add_argument("--reason", required=needs_reason)
        p.add_argument("--by", default="founder")
        if name != "block":
            p.add_argument("--key", help=KEY_HELP)
        p.set_defaults(func=_founder_action(call, verb, None if name == "block" else name))

    p = sub.add_parser("resume", help="resume a task the cost governor paused (founder-signed)")
    p.add_argument("task")
    p.add_argument("--reason")
    p.add_argument("--by", default="founder")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=_founder_action("resume_task", "resumed", "resume"))

    p = sub.add_parser(
        "run", help="start an agent's process now, supervised by its session (founder-signed)"
    )
    p.add_argument("agent")
    p.add_argument("--prompt", help="what to tell it (default: start your work)")
    p.add_argument("--task", help="the task it works on")
    p.add_argument("--by", default="founder")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser(
        "sandbox",
        help="run a command (claude, codex, a shell) in an agent's sandbox, with its token and "
        "gateway, on this terminal: tether sandbox AGENT -- COMMAND [ARG...]",
    )
    p.add_argument("agent")
    p.add_argument(
        "command", nargs=argparse.REMAINDER, help="-- then the command and its arguments"
    )
    p.set_defaults(func=cmd_sandbox)
    p = sub.add_parser(
        "stop", help="end an agent's process group now: SIGTERM, then SIGKILL (founder-signed)"
    )
    p.add_argument("agent")
    p.add_argument("--reason")
    p.add_argument("--by", default="founder")
    p.set_defaults(func=cmd_stop)

    session = sub.add_parser(
        "session", help="agent sessions: start, show, end, recheck, list, note, release, report"
    )
    ssub = session.add_subparsers(dest="session_command", required=True, metavar="ACTION")
    p = ssub.add_parser("start", help="start (or resume) an agent's session and print its brief")
    p.add_argument("--agent", required=True)
    p.add_argument("--task", help="the task this session works on")
    p.add_argument("--artifact", help=ARTIFACT_FORMS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_session_start)
    p = ssub.add_parser("show", help="an agent's current (or last) session")
    p.add_argument("agent")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_session_show)
    p = ssub.add_parser("end", help="end an agent's session; its artifact is checked")
    p.add_argument("agent")
    p.add_argument("--reason", default="ended from the CLI")
    p.add_argument("--by", default="founder")
    p.set_defaults(func=cmd_session_end)
    p = ssub.add_parser("note", help="keep a decision or open question for the handoff")
    p.add_argument("agent")
    p.add_argument("text", nargs="?")
    p.add_argument("--decision")
    p.add_argument("--question")
    p.set_defaults(func=cmd_session_note)
    p = ssub.add_parser("release", help="release a session held by a governor (founder-signed)")
    p.add_argument("agent")
    p.add_argument("--reason", default="")
    p.add_argument("--by", default="founder")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_session_release)
    p = ssub.add_parser(
        "report", help="report a tool call / usage (Report JSON on stdin) to the governors"
    )
    p.add_argument("agent")
    p.set_defaults(func=cmd_session_report)
    p = ssub.add_parser("recheck", help="probe a blocked session's credentials again")
    p.add_argument("agent")
    p.add_argument("--by", default="founder")
    p.set_defaults(func=cmd_session_recheck)
    p = ssub.add_parser("list", help="sessions, newest first, with pseudo-work counts")
    p.add_argument("--agent")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_session_list)

    budget = sub.add_parser("budget", help="hard budgets: show the spend, raise a limit (signed)")
    bsub = budget.add_subparsers(dest="budget_command", required=True, metavar="ACTION")
    p = bsub.add_parser("show", help="spend today and this month (UTC) against each budget")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_budget_show)
    p = bsub.add_parser(
        "raise",
        help="raise an agent's daily budget (today) or the team's monthly budget (this month) "
        "with an order signed by the founder's key; the sessions it held are released",
    )
    p.add_argument("--agent", help="the agent whose daily budget is raised")
    p.add_argument("--daily", type=float, metavar="USD", help="its new daily limit for today")
    p.add_argument("--team-monthly", type=float, metavar="USD", help="the team's new limit")
    p.add_argument("--reason", default="")
    p.add_argument("--by", default="founder")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_budget_raise)

    agent = sub.add_parser("agent", help="agents' identities at the gateway: token, revoke, tokens")
    asub = agent.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    p = asub.add_parser("token", help="mint an agent's token (a founder action; shown once)")
    p.add_argument("agent")
    p.add_argument("--rotate", action="store_true", help="revoke the agent's other tokens")
    p.add_argument("--by", default="founder")
    p.set_defaults(func=cmd_agent_token)
    p = asub.add_parser("revoke", help="revoke every token of an agent")
    p.add_argument("agent")
    p.add_argument("--by", default="founder")
    p.set_defaults(func=cmd_agent_revoke)
    p = asub.add_parser("tokens", help="tokens minted, without their secret part")
    p.add_argument("--agent")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_agent_tokens)

    p = sub.add_parser("status", help=cockpit.STATUS_HELP)
    cockpit.add_status_arguments(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("inbox", help=cockpit.INBOX_HELP)
    cockpit.add_inbox_arguments(p)
    p.set_defaults(func=cmd_inbox, inbox_command=None)
    isub = p.add_subparsers(dest="inbox_command", metavar="ACTION")
    done = isub.add_parser("done", help="acknowledge notices: tether inbox done ID [ID ...]")
    done.add_argument("ids", type=int, nargs="+", metavar="ID")

    hooks = sub.add_parser("hooks", help="install the agent runtime hooks")
    hsub = hooks.add_subparsers(dest="hooks_command", required=True, metavar="ACTION")
    p = hsub.add_parser(
        "install",
        help="write the agent runtime's hooks: Claude Code (.claude/settings.json), Codex "
        "(.codex/hooks.json), Gemini CLI (.gemini/settings.json) or Cursor (.cursor/hooks.json)",
    )
    p.add_argument("--agent", required=True)
    p.add_argument(
        "--runtime",
        choices=runtimes.NAMES,
        default="claude-code",
        help="the agent's runtime (default claude-code)",
    )
    p.add_argument("--project", default=".", help="the project folder (default: here)")
    p.add_argument(
        "--fail-open",
        action="store_true",
        help="let tool calls through when "
        "Tether is unreachable (default: the agent's fail_closed in tether.toml)",
    )
    p.add_argument(
        "--gateway", help="the gateway's URL (default: TETHER_GATEWAY_URL, or `tether up`'s)"
    )
    p.add_argument(
        "--transport",
        choices=("http", "command"),
        default="http",
        help="Claude Code's HTTP hooks (default), or the `tether hook` command for every event",
    )
    p.set_defaults(func=cmd_hooks_install)

    deploy = sub.add_parser("deploy", help="deployments: request, show, queue")
    dsub = deploy.add_subparsers(dest="deploy_command", required=True, metavar="ACTION")
    p = dsub.add_parser("request", help="ask to deploy SERVICE at an exact commit, tag or branch")
    p.add_argument("service")
    p.add_argument("--ref", required=True, help="commit, tag or branch (resolved to a commit now)")
    p.add_argument("--agent", required=True)
    p.add_argument("--reason", default="")
    p.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        default="staging",
        help="staging (default), or production: only a commit that ran healthy in staging for "
        "the service's soak_minutes",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_deploy_request)
    p = dsub.add_parser("show", help="a deployment, with its audit trail")
    p.add_argument("deployment")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_deploy_show)
    p = dsub.add_parser("queue", help="who holds a service's deploy lock and who waits")
    p.add_argument("service")
    p.add_argument("--env", choices=ENVIRONMENTS, default="staging")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_deploy_queue)

    p = sub.add_parser(
        "keygen",
        help="make an Ed25519 key pair: the founder's (default), the gateway's, the workers'",
    )
    p.add_argument("--role", choices=["founder", "gateway", "worker"], default="founder")
    p.add_argument("--force", action="store_true", help="replace an existing key")
    p.set_defaults(func=cmd_keygen)
    for name, decision in (("approve", "approve"), ("reject", "reject")):
        p = sub.add_parser(
            name,
            help=f"{name} a deployment, signed with the founder's key (approving makes and "
            "pushes the founder's signed tag staging|production/<service>/<n>)",
        )
        p.add_argument("deployment")
        p.add_argument("--key", help=KEY_HELP)
        p.add_argument("--by", default="founder")
        p.add_argument("--reason", required=decision == "reject")
        if decision == "approve":
            p.add_argument(
                "--expires-in",
                type=float,
                metavar="MINUTES",
                help="how long the approval stays valid (default: the service's approval_ttl)",
            )
            p.add_argument(
                "--print",
                action="store_true",
                help="print the signed approval (JSON) instead of sending it: paste it into the "
                "Web UI as the input of a signal named 'approve'",
            )
        p.set_defaults(func=_decide(decision))

    sub.add_parser(
        "hook", help="answer an agent runtime's hook: tether hook claude-code EVENT --agent NAME"
    )
    return parser


async def _run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    setup_tracing(settings.otel_exporter, role="worker" if args.command == "up" else "cli")
    if args.command == "up":
        # `tether up` runs the worker in this process: it serves the worker's metrics.
        setup_metrics(settings.metrics_bind)
    func: Callable[[argparse.Namespace, Settings], Awaitable[int]] = args.func
    return await func(args, settings)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "up":
        setup_logging(verbose=args.verbose)
    else:
        # A request that waits says why, one line at a time ("still waiting: …").
        said = logging.StreamHandler(sys.stderr)
        said.setFormatter(logging.Formatter("tether: %(message)s"))
        client_log = logging.getLogger("tether.client")
        client_log.addHandler(said)
        client_log.setLevel(logging.WARNING)
        client_log.propagate = False
    run_and_exit(_run(args))


if __name__ == "__main__":
    main(sys.argv[1:])
