"""Agent sessions: `session start|show|end|note|release|report|recheck|list`."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from pydantic import ValidationError

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
from tether.cli.taskfile import artifact_from_flag
from tether.config import Settings, describe_validation_error
from tether.contracts import (
    Artifact,
    NoteInput,
    Report,
    SessionInput,
    SessionState,
    SessionView,
)
from tether.errors import TetherError


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
        verdict = "PSEUDO-WORK" if view.pseudo_work else pass_mark(view.artifact_result.passed)
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
            said = [ln.strip() for ln in r.last.stderr_tail.splitlines() if ln.strip()]
            if said and r.last.exit_code:
                # Its error line, if it printed one; its last line otherwise.
                error = [ln for ln in said if re.match(r"(fatal|error)\b", ln, re.I)]
                lines.append(f"      it said: {(error or said[-1:])[0][:200]}")
    return "\n".join(lines)


async def cmd_session_start(args: argparse.Namespace, settings: Settings) -> int:
    artifact = Artifact.model_validate(artifact_from_flag(args.artifact)) if args.artifact else None
    inp = SessionInput(agent=args.agent, artifact=artifact, task_id=args.task, runtime="cli")
    view = await api.start_session(await founder_client(settings), settings.task_queue, inp)
    if args.json:
        print_json(view.model_dump(mode="json"))
    elif view.state == SessionState.BLOCKED:
        print(view.notice)
    else:
        print(view.brief.text if view.brief else render_session(view))
    return 3 if view.state == SessionState.BLOCKED else 0


async def cmd_session_show(args: argparse.Namespace, settings: Settings) -> int:
    view = await api.session_view(await founder_client(settings), args.agent)
    if view is None:
        raise TetherError(f"{args.agent} has never had a session")
    if args.json:
        print_json(view.model_dump(mode="json"))
    else:
        print(render_session(view))
        if view.brief and view.state != SessionState.ENDED:
            print("\n" + view.brief.text)
    return 0


async def cmd_session_end(args: argparse.Namespace, settings: Settings) -> int:
    view = await api.end_session(await founder_client(settings), args.agent, args.reason, args.by)
    print(render_session(view))
    return 1 if view.pseudo_work else 0


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
        view = await api.note_session(await founder_client(settings), args.agent, inp)
    print(f"noted for {args.agent}'s handoff ({len(view.governor.notes)} notes)")
    return 0


async def cmd_session_release(args: argparse.Namespace, settings: Settings) -> int:
    signed = founder_order(args, settings, "release", args.agent)
    view = await api.release_session(
        await founder_client(settings), args.agent, args.by, args.reason, order=signed
    )
    print(render_session(view))
    return 0


async def cmd_session_report(args: argparse.Namespace, settings: Settings) -> int:
    raw = sys.stdin.read()
    try:
        inp = Report.model_validate_json(raw or "{}")
    except ValidationError as exc:
        raise TetherError(describe_validation_error(exc, "the report on stdin")) from exc
    answer = await api.report(await founder_client(settings), args.agent, inp)
    print_json(answer.model_dump(mode="json"))
    return 3 if answer.deny else 0


async def cmd_session_recheck(args: argparse.Namespace, settings: Settings) -> int:
    view = await api.recheck_session(await founder_client(settings), args.agent, args.by)
    print(render_session(view))
    return 3 if view.state == SessionState.BLOCKED else 0


async def cmd_session_list(args: argparse.Namespace, settings: Settings) -> int:
    store = await open_store(settings)
    try:
        rows = await store.list_sessions(agent=args.agent)
        counts = await store.pseudo_work_counts()
    finally:
        await store.pool.close()
    if args.json:
        print_json({"sessions": rows, "pseudo_work": counts})
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
        print("\npseudo-work per agent, last 30 days (flagged / ended sessions):")
        for agent, (flagged, ended) in counts.items():
            print(f"  {agent:<14} {flagged} / {ended}")
    return 0


def register(sub: Any) -> None:
    """This module's commands, on the `tether` parser's subcommands."""
    session = sub.add_parser(
        "session", help="agent sessions: start, show, end, recheck, list, note, release, report"
    )
    ssub = session.add_subparsers(dest="session_command", required=True, metavar="ACTION")
    p = ssub.add_parser("start", help="start (or resume) an agent's session and print its brief")
    agent_option(p, "the agent, as tether.toml names it")
    p.add_argument("--task", help="the task this session works on")
    p.add_argument("--artifact", help=ARTIFACT_FORMS)
    p.add_argument("--json", action="store_true", help="the answer as JSON, for scripts")
    p.set_defaults(func=cmd_session_start)
    p = ssub.add_parser("show", help="an agent's current (or last) session")
    p.add_argument("agent", help="the agent's name, as tether.toml has it")
    p.add_argument("--json", action="store_true", help="the answer as JSON, for scripts")
    p.set_defaults(func=cmd_session_show)
    p = ssub.add_parser("end", help="end an agent's session; its artifact is checked")
    p.add_argument("agent", help="the agent's name, as tether.toml has it")
    p.add_argument("--reason", default="ended from the CLI", help="why (kept with the session)")
    p.add_argument("--by", default="founder", help="who acts (kept with the action)")
    p.set_defaults(func=cmd_session_end)
    p = ssub.add_parser("note", help="keep a decision or open question for the handoff")
    p.add_argument("agent", help="the agent's name, as tether.toml has it")
    p.add_argument("text", nargs="?", help="a note for the session's handoff")
    p.add_argument("--decision", help="a decision the agent made, for its next session")
    p.add_argument("--question", help="a question left for the founder or the next session")
    p.set_defaults(func=cmd_session_note)
    p = ssub.add_parser("release", help="release a session held by a governor (founder-signed)")
    p.add_argument("agent", help="the agent's name, as tether.toml has it")
    p.add_argument("--reason", default="", help="why (kept with the action)")
    p.add_argument("--by", default="founder", help="who acts (kept with the action)")
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=cmd_session_release)
    p = ssub.add_parser(
        "report", help="report a tool call / usage (Report JSON on stdin) to the governors"
    )
    p.add_argument("agent", help="the agent's name, as tether.toml has it")
    p.set_defaults(func=cmd_session_report)
    p = ssub.add_parser("recheck", help="probe a blocked session's credentials again")
    p.add_argument("agent", help="the agent's name, as tether.toml has it")
    p.add_argument("--by", default="founder", help="who acts (kept with the action)")
    p.set_defaults(func=cmd_session_recheck)
    p = ssub.add_parser("list", help="sessions, newest first, with pseudo-work counts")
    p.add_argument("--agent", help="only this agent's")
    p.add_argument("--json", action="store_true", help="the answer as JSON, for scripts")
    p.set_defaults(func=cmd_session_list)
