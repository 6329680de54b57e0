"""Where a running `tether up` said its servers are (stack.json under TETHER_HOME), and the
addresses a command uses: the environment first, then that file. Light on purpose: the
read-only commands import this, and neither pydantic nor the Temporal SDK."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from tether.errors import TetherError

if TYPE_CHECKING:
    from tether.config import Settings


def home_from_env(env: Mapping[str, str]) -> Path:
    """TETHER_HOME, else ~/.tether: where tether.toml, the keys and stack.json live."""
    return Path(env.get("TETHER_HOME") or Path.home() / ".tether").expanduser()


def config_path_from_env(env: Mapping[str, str], home: Path) -> Path | None:
    """TETHER_CONFIG, else tether.toml under `home` when there is one."""
    config = env.get("TETHER_CONFIG")
    if config:
        return Path(config).expanduser()
    default = home / "tether.toml"
    return default if default.exists() else None


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
    return database_url_from(settings.database_url, settings.home, settings.database_password_file)


def database_url_from(configured: str | None, home: Path, password_file: Path | None = None) -> str:
    """DATABASE_URL when set (with the password TETHER_DATABASE_PASSWORD_FILE holds, if set),
    else the database of the `tether up` running under `home`."""
    if configured:
        if password_file is None:
            return configured
        if urlsplit(configured).password:
            raise TetherError(
                "DATABASE_URL names a password and TETHER_DATABASE_PASSWORD_FILE is set too: "
                "keep one of them"
            )
        return with_password(configured, _password(password_file))
    stack = read_stack_file(home) or {}
    url = stack.get("database_url")
    if not url:
        raise TetherError(
            "no database: start the stack with `tether up`, or set DATABASE_URL to a PostgreSQL "
            "server"
        )
    secret = stack.get("database_password_file")
    if not secret:
        return str(url)
    return with_password(str(url), _password(Path(str(secret))))


def _password(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise TetherError(
            f"cannot read the database's password in {path} ({exc.strerror}): run this as the "
            "user that ran `tether up`, or set DATABASE_URL"
        ) from exc


def with_password(url: str, password: str) -> str:
    """`url` (postgresql://user@host/db) with `password` in it."""
    scheme, _, rest = url.partition("://")
    user, _, where = rest.partition("@")
    return f"{scheme}://{user}:{quote(password, safe='')}@{where}"
