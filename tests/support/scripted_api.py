"""The shape every scripted model API of the tests shares: an HTTP server on 127.0.0.1 in a
daemon thread, a log of the requests the model was sent, and a subclass's `answer` to each POST
(tests/support/responses_api.py for Codex, tests/support/gemini_api.py for the Gemini CLI)."""

from __future__ import annotations

import threading
from typing import Any

from tether.ops.loopback import LoopbackServer, QuietHandler, read_json, respond


class ScriptedApi:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        api = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                status, data, kind = api.answer(self.path, read_json(self))
                respond(self, status, data, kind)

            def do_GET(self) -> None:
                respond(self, 404)

        self._http = LoopbackServer(Handler)

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, bytes, str]:
        """(status, body, content type) for one POST."""
        raise NotImplementedError

    def record(self, body: dict[str, Any]) -> int:
        """Log a request of the model's main loop; its number (0 for the first)."""
        with self._lock:
            self.requests.append(body)
            return len(self.requests) - 1

    @property
    def url(self) -> str:
        return self._http.url

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()
