"""Where a running `tether up` said its servers are (stack.json under TETHER_HOME), and the
addresses a command uses: the environment first, then that file. Light on purpose: the
read-only commands import this, not the Temporal SDK."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tether.config import Settings
from tether.errors import TetherError


def stack_file(home: Path) -> Path:
    return home / "stack.json"


def read_stack_file(home: Path) -> dict[str, str | int] | None:
    path = stack_file(home)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = data.get("pid")
    if isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # left behind by a `tether up` that was killed
        except PermissionError:
            pass
    return data if isinstance(data, dict) else None


def temporal_address(settings: Settings) -> str:
    """The environment first, then a running `tether up`, then the default local port."""
    if settings.temporal_address:
        return settings.temporal_address
    stack = read_stack_file(settings.home) or {}
    return str(stack.get("temporal_address") or f"localhost:{settings.temporal_port}")


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    stack = read_stack_file(settings.home) or {}
    url = stack.get("database_url")
    if not url:
        raise TetherError(
            "no database: start the stack with `tether up`, or set DATABASE_URL to a PostgreSQL "
            "server"
        )
    return str(url)
