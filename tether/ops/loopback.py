"""A small HTTP server on 127.0.0.1 in a daemon thread: the demo's service, and the tests'
stand-ins for services, forges, webhooks and collectors."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not log every request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def read_json(handler: BaseHTTPRequestHandler) -> Any:
    """The request's JSON body (an empty body is an empty object)."""
    import json

    raw = handler.rfile.read(int(handler.headers.get("content-length") or 0))
    return json.loads(raw or b"{}")


def respond(
    handler: BaseHTTPRequestHandler,
    status: int,
    data: bytes = b"",
    content_type: str = "application/json",
) -> None:
    handler.send_response(status)
    handler.send_header("content-type", content_type)
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
