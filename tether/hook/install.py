"""`tether hooks install`: Tether's hook entries in a project's .claude/settings.json, everything
else kept, and the launcher the command entries run.

Two transports, both to the gateway (agents never reach Temporal or the database):
- "http" (the default): Claude Code posts each event to the gateway itself (`type: "http"`, no
  process started per tool call). The agent's token goes in the Authorization header from the
  agent's environment (`$TETHER_AGENT_TOKEN`, allowed by `allowedEnvVars`), never into a file.
  Claude Code lets a tool call through when an HTTP hook gets no answer, so an agent that fails
  closed keeps the command hook for PreToolUse: it denies when the gateway cannot be reached.
  SessionStart and Stop always use the command (see COMMAND_ONLY).
- "command": every event runs `"$CLAUDE_PROJECT_DIR"/.claude/hooks/tether EVENT` (the form
  Claude Code's documentation gives for project hooks), which forwards to the gateway. The
  launcher holds this machine's command line: Claude Code shows a hook's command to the model
  when the hook blocks, and the model has no business reading local paths or the agent's flags.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Literal

from tether import runtimes
from tether.hook.claude_code import ENV_FORWARDED, ENV_HEADER_PREFIX, TOKEN_ENV
from tether.names import DEFAULT_GATEWAY_URL

# (event, matcher, timeout in seconds)
_INSTALLED = (
    ("SessionStart", "startup|resume|clear|compact", 60),
    ("PreToolUse", "*", 15),
    ("PostToolUse", "*", 15),
    ("PostToolUseFailure", "*", 15),
    ("PostCompact", None, 15),
    ("Stop", None, 60),
    ("SessionEnd", None, 5),
)

LAUNCHER = Path(".claude") / "hooks" / "tether"
COMMAND = '"$CLAUDE_PROJECT_DIR"/.claude/hooks/tether'

# How Tether's own entries are recognised, so installing again replaces them: the launcher, the
# direct command line that earlier versions wrote, and the gateway's hook URL.
_MARKS = (COMMAND, " hook claude-code ")
_URL_MARK = "/hooks/claude-code/"

Transport = Literal["http", "command"]

# Through the `tether hook` command (which forwards to the gateway like the rest), always:
# SessionStart, where Claude Code runs only command (and MCP tool) hooks; and Stop, whose block
# an HTTP hook can only answer as JSON, which Claude Code (2.1.332) shows the model twice, the
# second time as a "hook blocking error" quoting the hook's URL; the command's exit 2 shows it
# once. Both fire once per session or turn, not per tool call.
COMMAND_ONLY = ("SessionStart", "Stop")


def _http_hook(gateway: str, agent: str, event: str, timeout: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer ${TOKEN_ENV}"}
    headers.update({ENV_HEADER_PREFIX + name: f"${name}" for name in ENV_FORWARDED})
    return {
        "type": "http",
        "url": f"{gateway}{_URL_MARK}{event}?agent={agent}",
        "timeout": timeout,
        "headers": headers,
        "allowedEnvVars": [TOKEN_ENV, *ENV_FORWARDED],
    }


def _ours(handler: Any) -> bool:
    if not isinstance(handler, dict):
        return False
    command, url = str(handler.get("command", "")), str(handler.get("url", ""))
    return any(mark in command for mark in _MARKS) or _URL_MARK in url


def _launcher(python: str, agent: str, fail_closed: bool, gateway: str | None) -> str:
    flags = ["--agent", agent] + (["--fail-closed"] if fail_closed else [])
    if gateway:
        flags += ["--gateway", gateway]
    # -S: no site initialisation (the hook needs the standard library and Tether's own package,
    # found through PYTHONPATH): a fifth of a hook's process start on a slow machine.
    root = shlex.quote(str(Path(__file__).resolve().parents[2]))
    return (
        "#!/bin/sh\n"
        "# Written by `tether hooks install`: Claude Code's hooks call Tether through this file.\n"
        "# Run `tether hooks install` again to change it; it is this machine's, not the repo's.\n"
        f"PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}} exec {shlex.quote(python)} -S "
        f'-m tether.hook claude-code "$1" {shlex.join(flags)}\n'
    )


def install(
    project: Path,
    agent: str,
    python: str,
    fail_closed: bool,
    gateway: str | None = None,
    transport: Transport = "http",
) -> Path:
    """Write Tether's hook entries into PROJECT/.claude/settings.json, keeping everything else
    there, and the launcher the command entries call; Tether's own earlier entries are
    replaced, so running it again changes nothing."""
    path = project / ".claude" / "settings.json"
    settings, hooks = _settings(path)
    for event, matcher, timeout in _INSTALLED:
        kept = []
        for group in hooks.get(event) or []:
            handlers = [h for h in group.get("hooks", []) if not _ours(h)]
            if handlers:
                kept.append({**group, "hooks": handlers})
        by_command = (
            transport == "command"
            or event in COMMAND_ONLY
            or (event == "PreToolUse" and fail_closed)
        )
        handler = (
            {"type": "command", "command": f"{COMMAND} {event}", "timeout": timeout}
            if by_command
            else _http_hook(gateway or DEFAULT_GATEWAY_URL, agent, event, timeout)
        )
        ours: dict[str, Any] = {"hooks": [handler]}
        if matcher:
            ours = {"matcher": matcher, **ours}
        hooks[event] = [*kept, ours]
    launcher = project / LAUNCHER
    launcher.parent.mkdir(parents=True, exist_ok=True)
    _write(launcher, _launcher(python, agent, fail_closed, gateway))
    launcher.chmod(0o755)
    _write(path, json.dumps(settings, indent=2) + "\n")
    return path


def _settings(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON settings file at `path` (empty when there is none) and its `hooks` object."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text() or "{}")
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); fix it or move it away") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path} does not hold a JSON object; fix it or move it away")
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ValueError(f"{path}: 'hooks' is not an object; fix it or move it away")
    return data, hooks


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


# --- the other runtimes ------------------------------------------------------------------------
# Where the file goes, the events and each entry's shape are the runtime module's
# (tether/runtimes/). Every entry runs the runtime's launcher, which forwards to the gateway
# through `tether hook RUNTIME EVENT`. Only one handler per event: Codex runs matching hooks
# concurrently, so two of Tether's would race each other.


def _runtime_launcher(
    runtime: str, python: str, agent: str, fail_closed: bool, gateway: str | None
) -> str:
    return (
        _launcher(python, agent, fail_closed, gateway)
        .replace("-m tether.hook claude-code", f"-m tether.hook {runtime}")
        .replace("Claude Code's hooks call", f"{runtime}'s hooks call")
    )


def _is_ours(handler: Any, launcher: Path) -> bool:
    return isinstance(handler, dict) and str(launcher) in str(handler.get("command", ""))


def install_runtime(
    runtime: str,
    project: Path,
    agent: str,
    python: str,
    fail_closed: bool,
    gateway: str | None = None,
) -> Path:
    """Tether's hooks for a runtime that installs them in a file of its own (Codex, Gemini CLI,
    Cursor) in PROJECT's configuration file, keeping everything else in it; Tether's earlier
    entries are replaced."""
    spoken = runtimes.RUNTIMES.get(runtime)
    if spoken is None or spoken.hook_file is None:
        raise ValueError(f"no hooks to install for runtime {runtime!r}")
    path = project / spoken.hook_file
    launcher = path.parent / "hooks" / "tether"
    ours = launcher.resolve()
    data, hooks = _settings(path)
    command = shlex.quote(str(ours))
    for event in spoken.events:
        entries = hooks.get(event) or []
        kept: list[Any] = []
        if spoken.grouped():
            for group in entries:
                handlers = [h for h in group.get("hooks", []) if not _is_ours(h, ours)]
                if handlers:
                    kept.append({**group, "hooks": handlers})
        else:
            kept = [h for h in entries if not _is_ours(h, ours)]
        hooks[event] = [*kept, spoken.hook_entry(event, f"{command} {event}")]
    spoken.finish_config(data)
    launcher.parent.mkdir(parents=True, exist_ok=True)
    _write(launcher, _runtime_launcher(runtime, python, agent, fail_closed, gateway))
    launcher.chmod(0o755)
    _write(path, json.dumps(data, indent=2) + "\n")
    return path
