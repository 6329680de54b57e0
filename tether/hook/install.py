"""`tether hooks install`: Tether's hook entries in a project's .claude/settings.json, everything
else kept, and the launcher they run.

The entries run `"$CLAUDE_PROJECT_DIR"/.claude/hooks/tether EVENT` (the form Claude Code's
documentation gives for project hooks), and the launcher holds this machine's command line:
Claude Code shows a hook's command to the model when the hook blocks, and the model has no
business reading local paths, the agent's flags or Tether's address.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

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

# How Tether's own entries are recognised, so installing again replaces them: the launcher, and
# the direct command line that earlier versions wrote.
_MARKS = (COMMAND, " hook claude-code ")


def _launcher(python: str, agent: str, fail_closed: bool, temporal_http: str | None) -> str:
    flags = ["--agent", agent] + (["--fail-closed"] if fail_closed else [])
    if temporal_http:
        flags += ["--temporal-http", temporal_http]
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
    temporal_http: str | None = None,
) -> Path:
    """Write Tether's hook entries into PROJECT/.claude/settings.json, keeping everything else
    there, and the launcher they call; Tether's own earlier entries are replaced, so running it
    again changes nothing."""
    path = project / ".claude" / "settings.json"
    settings: dict[str, Any] = {}
    if path.exists():
        try:
            settings = json.loads(path.read_text() or "{}")
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); fix it or move it away") from exc
        if not isinstance(settings, dict):
            raise ValueError(f"{path} does not hold a JSON object; fix it or move it away")
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise ValueError(f"{path}: 'hooks' is not an object; fix it or move it away")
    for event, matcher, timeout in _INSTALLED:
        kept = []
        for group in hooks.get(event) or []:
            handlers = [
                h
                for h in group.get("hooks", [])
                if not any(mark in str(h.get("command", "")) for mark in _MARKS)
            ]
            if handlers:
                kept.append({**group, "hooks": handlers})
        ours: dict[str, Any] = {
            "hooks": [{"type": "command", "command": f"{COMMAND} {event}", "timeout": timeout}]
        }
        if matcher:
            ours = {"matcher": matcher, **ours}
        hooks[event] = [*kept, ours]
    launcher = project / LAUNCHER
    launcher.parent.mkdir(parents=True, exist_ok=True)
    _write(launcher, _launcher(python, agent, fail_closed, temporal_http))
    launcher.chmod(0o755)
    _write(path, json.dumps(settings, indent=2) + "\n")
    return path


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
