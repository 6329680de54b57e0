"""A small HTTP server on 127.0.0.1 in a daemon thread: the demo's service, and the tests'
stand-ins for services, forges, webhooks and collectors."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not log every request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


# A client that went away mid-request (an agent's process ended by the runner while its model
# call was in flight: the guardrail working) is not the server's error to print.
GONE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class QuietServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that prints no traceback for a client that went away."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], GONE):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = QuietServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request's body, sized by Content-Length or sent in chunks (as a client does through a
    proxy that streams it, such as the sandbox's); http.server decodes neither by itself, and a
    chunked body left unread would be taken for the next request on the connection."""
    if "chunked" not in (handler.headers.get("transfer-encoding") or "").lower():
        return handler.rfile.read(int(handler.headers.get("content-length") or 0))
    body = bytearray()
    while True:
        size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        body += handler.rfile.read(size)
        handler.rfile.readline()  # the CRLF after each chunk


def read_json(handler: BaseHTTPRequestHandler) -> Any:
    """The request's JSON body (an empty body is an empty object)."""
    import json

    return json.loads(read_body(handler) or b"{}")


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
