"""Real things for tests: an HTTP service on 127.0.0.1 and git repositories in temporary folders."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tether.ops.loopback import LoopbackServer


class HttpService:
    """A service whose answer the test changes: status, body, and an optional delay."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = b'{"status": "ok"}'
        self.content_type = "application/json"
        self.requests = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.requests += 1
                status, body = service.answer()
                self.send_response(status)
                self.send_header("Content-Type", service.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self) -> tuple[int, bytes]:
        """The status and body of the next response (subclasses compute them)."""
        return self.status, self.body

    def respond(self, status: int, body: Any = None) -> None:
        self.status = status
        if body is not None:
            self.body = json.dumps(body).encode() if not isinstance(body, bytes) else body

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    base = {
        "GIT_AUTHOR_NAME": "Test Agent",
        "GIT_AUTHOR_EMAIL": "agent@example.invalid",
        "GIT_COMMITTER_NAME": "Test Agent",
        "GIT_COMMITTER_EMAIL": "agent@example.invalid",
        "HOME": str(repo),
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
    ).stdout.strip()


def make_repo(path: Path, branch: str = "main") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    (path / "README.md").write_text("hello\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "initial")
    return path


def commit_file(repo: Path, rel: str, content: str, message: str, date: str | None = None) -> str:
    target = repo / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    git(repo, "add", rel)
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else None
    git(repo, "commit", "-q", "-m", message, env=env)
    return git(repo, "rev-parse", "HEAD")


class FakeForge:
    """A forge on 127.0.0.1 speaking GitHub's REST shape (or Gitea's under /api/v1): `GET /user`
    with token checks and an optional expiry header, open pull requests and their files."""

    def __init__(self, kind: str = "github") -> None:
        self.kind = kind
        self.tokens: set[str] = set()
        self.expiry: str | None = None
        self.rate_limited = False
        # "owner/name" -> list of (number, title, branch, login, files)
        self.pulls: dict[str, list[tuple[int, str, str, str, list[str]]]] = {}
        self.auth_headers: list[str] = []
        self.requests: list[str] = []
        # While cleared, requests wait (a forge that hangs); `waiting` counts them.
        self.open = threading.Event()
        self.open.set()
        self.waiting = 0
        forge = self
        prefix = "/api/v1" if kind == "gitea" else ""

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                forge.requests.append(self.path.split("?", 1)[0])
                forge.waiting += 1
                forge.open.wait(timeout=60)
                forge.waiting -= 1
                auth = self.headers.get("Authorization", "")
                forge.auth_headers.append(auth.split(" ", 1)[0])
                token = auth.split(" ", 1)[1] if " " in auth else ""
                if forge.rate_limited:
                    self._send(403, {"message": "rate limit"}, {"x-ratelimit-remaining": "0"})
                    return
                if token not in forge.tokens:
                    self._send(401, {"message": "Bad credentials"})
                    return
                path = self.path.split("?", 1)[0].removeprefix(prefix)
                parts = path.strip("/").split("/")
                extra = {"github-authentication-token-expiration": forge.expiry}
                if path == "/user":
                    self._send(200, {"login": "tether-bot"}, extra if forge.expiry else None)
                elif len(parts) == 4 and parts[0] == "repos" and parts[3] == "pulls":
                    pulls = forge.pulls.get(f"{parts[1]}/{parts[2]}", [])
                    self._send(
                        200,
                        [
                            {
                                "number": n,
                                "title": t,
                                "head": {"ref": b},
                                "user": {"login": u},
                                "updated_at": "2026-11-20T10:00:00Z",
                                "html_url": f"http://forge/{n}",
                            }
                            for n, t, b, u, _ in pulls
                        ],
                    )
                elif len(parts) == 6 and parts[3] == "pulls" and parts[5] == "files":
                    pulls = forge.pulls.get(f"{parts[1]}/{parts[2]}", [])
                    files = next((f for n, *_, f in pulls if str(n) == parts[4]), None)
                    if files is None:
                        self._send(404, {"message": "not found"})
                    else:
                        self._send(200, [{"filename": f} for f in files])
                else:
                    self._send(404, {"message": "not found"})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def api_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}" + ("/api/v1" if self.kind == "gitea" else "")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Webhook:
    """A Slack-style incoming webhook on 127.0.0.1 that records what it is sent."""

    def __init__(self) -> None:
        self.status = 200
        # Answer 503 to this many posts before answering `status`.
        self.fail_first = 0
        self.received: list[dict[str, Any]] = []
        # While cleared, posts wait (a webhook that hangs); `in_flight` counts them.
        self.open = threading.Event()
        self.open.set()
        self.in_flight = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                hook.in_flight += 1
                hook.open.wait(timeout=60)
                hook.in_flight -= 1
                hook.received.append(body)
                status = hook.status
                if hook.fail_first > 0:
                    hook.fail_first -= 1
                    status = 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = LoopbackServer(Handler)
        self.stop = self._http.stop

    @property
    def url(self) -> str:
        return f"{self._http.url}/services/T000/B000/secret"


class DatabaseUrl(str):
    """A database URL whose repr hides its password, so a failing test's traceback (which prints
    its fixtures' values) never shows it."""

    def __repr__(self) -> str:
        scheme, _, rest = self.partition("://")
        user, at, where = rest.rpartition("@")
        name = user.partition(":")[0]
        return repr(f"{scheme}://{name}:***@{where}" if at and ":" in user else str(self))


def clean_environment(**variables: str) -> dict[str, str]:
    """This process's environment without any TEMPORAL_* or TETHER_* setting, plus `variables`:
    what a command under test sees."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "TETHER_"))}
    env.update(variables)
    return env


def history_text(history: object) -> str:
    """A workflow history as searchable text: its JSON with every payload's data decoded
    (`to_json()` alone shows payloads as base64, where no secret could ever be found)."""
    import base64
    import contextlib
    import json

    raw = json.loads(history.to_json())  # type: ignore[attr-defined]
    decoded: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, str) and "metadata" in node:
                with contextlib.suppress(ValueError):
                    decoded.append(base64.b64decode(data).decode("utf-8", "replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(raw)
    return json.dumps(raw) + "\n" + "\n".join(decoded)


async def eventually(probe: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    """Signals and deliveries happen asynchronously: wait until `probe` (plain or async)
    returns something truthy, and return it."""
    import asyncio
    import inspect

    for _ in range(int(seconds / 0.1)):
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
