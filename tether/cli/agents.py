"""The agents: `run`, `sandbox` and `stop` their processes, `agent` tokens (their identity at
the gateway), `hooks install` (their runtime's hooks), `mcp` (their tools over stdio)."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from tether import runtimes
from tether.cli.common import (
    agent_client,
    api,
    founder_client,
    open_store,
    opened_store,
    print_json,
)
from tether.cli.sessions import render_session
from tether.config import Settings, load_config
from tether.contracts import (
    RunRequest,
    StopInput,
)
from tether.errors import TetherError
from tether.names import NAME_PATTERN


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
        await founder_client(settings), settings.task_queue, agent.name, agent.runtime, request
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

    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise TetherError("say what to run: tether sandbox AGENT -- COMMAND [ARG...]")
    config = load_config(settings.config_path)
    store = await open_store(settings)
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
    view = await api.stop_agent(await founder_client(settings), args.agent, request)
    print(render_session(view))
    return 0


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
    async with opened_store(settings) as store:
        token = await store.mint_agent_token(args.agent, args.by, rotate=args.rotate)
    what = "rotated: its earlier tokens no longer work" if args.rotate else "minted"
    print(f"token for {args.agent} {what}; it is shown only now (Tether keeps a hash):")
    print(token)
    print(f"give it to {args.agent}'s runtime as TETHER_AGENT_TOKEN, never in a file in a repo")
    return 0


async def cmd_agent_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async with opened_store(settings) as store:
        revoked = await store.revoke_agent_tokens(args.agent, args.by)
    if not revoked:
        raise api.Refused(f"{args.agent} has no token to revoke")
    print(f"revoked {revoked} token(s) of {args.agent}")
    return 0


async def cmd_agent_tokens(args: argparse.Namespace, settings: Settings) -> int:
    async with opened_store(settings) as store:
        rows = await store.agent_tokens(args.agent)
    if args.json:
        print_json(rows)
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


def register(sub: Any) -> None:
    """This module's commands, on the `tether` parser's subcommands."""
    p = sub.add_parser(
        "mcp",
        help="serve Tether's MCP tools over stdio, for the agent whose TETHER_AGENT_TOKEN is set "
        "(the gateway serves the same over streamable HTTP at /mcp)",
    )
    p.set_defaults(func=cmd_mcp)

    p = sub.add_parser(
        "run", help="start an agent's process now, supervised by its session (founder-signed)"
    )
    p.add_argument("agent", help="the agent's name, as tether.toml has it")
    p.add_argument("--prompt", help="what to tell it (default: start your work)")
    p.add_argument("--task", help="the task it works on")
    p.add_argument("--by", default="founder", help="who acts (kept with the action)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser(
        "sandbox",
        help="run a command (claude, codex, a shell) in an agent's sandbox, with its token and "
        "gateway, on this terminal: tether sandbox AGENT -- COMMAND [ARG...]",
    )
    p.add_argument("agent", help="the agent's name, as tether.toml has it")
    p.add_argument(
        "argv",
        nargs=argparse.REMAINDER,
        metavar="COMMAND",
        help="-- then the command and its arguments",
    )
    p.set_defaults(func=cmd_sandbox)
    p = sub.add_parser(
        "stop", help="end an agent's process group now: SIGTERM, then SIGKILL (founder-signed)"
    )
    p.add_argument("agent", help="the agent's name, as tether.toml has it")
    p.add_argument("--reason", help="why (kept with the action)")
    p.add_argument("--by", default="founder", help="who acts (kept with the action)")
    p.set_defaults(func=cmd_stop)

    agent = sub.add_parser("agent", help="agents' identities at the gateway: token, revoke, tokens")
    asub = agent.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    p = asub.add_parser("token", help="mint an agent's token (a founder action; shown once)")
    p.add_argument("agent", help="the agent's name, as tether.toml has it")
    p.add_argument("--rotate", action="store_true", help="revoke the agent's other tokens")
    p.add_argument("--by", default="founder", help="who acts (kept with the action)")
    p.set_defaults(func=cmd_agent_token)
    p = asub.add_parser("revoke", help="revoke every token of an agent")
    p.add_argument("agent", help="the agent's name, as tether.toml has it")
    p.add_argument("--by", default="founder", help="who acts (kept with the action)")
    p.set_defaults(func=cmd_agent_revoke)
    p = asub.add_parser("tokens", help="tokens minted, without their secret part")
    p.add_argument("--agent", help="only this agent's")
    p.add_argument("--json", action="store_true", help="the answer as JSON, for scripts")
    p.set_defaults(func=cmd_agent_tokens)

    hooks = sub.add_parser("hooks", help="install the agent runtime hooks")
    hsub = hooks.add_subparsers(dest="hooks_command", required=True, metavar="ACTION")
    p = hsub.add_parser(
        "install",
        help="write the agent runtime's hooks: Claude Code (.claude/settings.json), Codex "
        "(.codex/hooks.json), Gemini CLI (.gemini/settings.json) or Cursor (.cursor/hooks.json)",
    )
    p.add_argument("--agent", required=True, help="the agent, as tether.toml names it")
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
