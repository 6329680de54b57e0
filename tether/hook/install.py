"""`tether hooks install`: Tether's hook entries in a project's .claude/settings.json, everything
else kept."""

from __future__ import annotations

import json
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


_MARK = " hook claude-code "


def install(
    project: Path,
    agent: str,
    executable: str,
    fail_closed: bool,
    temporal_http: str | None = None,
) -> Path:
    """Write Tether's hook entries into PROJECT/.claude/settings.json, keeping everything else
    there; Tether's own earlier entries are replaced, so running it again changes nothing."""
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
    base = f"{executable}{_MARK}"
    flags = f" --agent {agent}" + (" --fail-closed" if fail_closed else "")
    if temporal_http:
        flags += f" --temporal-http {temporal_http}"
    for event, matcher, timeout in _INSTALLED:
        kept = []
        for group in hooks.get(event) or []:
            handlers = [h for h in group.get("hooks", []) if _MARK not in str(h.get("command", ""))]
            if handlers:
                kept.append({**group, "hooks": handlers})
        ours: dict[str, Any] = {
            "hooks": [{"type": "command", "command": f"{base}{event}{flags}", "timeout": timeout}]
        }
        if matcher:
            ours = {"matcher": matcher, **ours}
        hooks[event] = [*kept, ours]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(settings, indent=2) + "\n")
    tmp.replace(path)
    return path
