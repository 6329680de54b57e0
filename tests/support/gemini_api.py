"""A scripted Gemini API on 127.0.0.1, for driving the real Gemini CLI offline.

The CLI is pointed at it with GOOGLE_GEMINI_BASE_URL (allowed over plain HTTP for 127.0.0.1)
and a dummy GEMINI_API_KEY. Each request of the agent's main loop (one that offers tools) gets
the next scripted turn, a `run_shell_command` function call or a final text, as one
`streamGenerateContent?alt=sse` chunk (or JSON for `generateContent`). A request without tools
(the CLI's own checks) is answered with a short JSON text and not part of the script. Every
request is logged, so a test can read what the model was shown. The shapes are the public
Gemini API's (GenerateContentResponse: candidates[].content.parts[].functionCall,
usageMetadata).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class GeminiApi:
    commands: list[str]
    last: str = "Done."
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        api = self
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                body = json.loads(raw or b"{}")
                parts = api._parts(body)
                chunk = {
                    "candidates": [
                        {"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}
                    ],
                    "usageMetadata": {
                        "promptTokenCount": 1000,
                        "candidatesTokenCount": 20,
                        "totalTokenCount": 1020,
                    },
                }
                if "stream" in self.path:
                    data = f"data: {json.dumps(chunk)}\r\n\r\n".encode()
                    kind = "text/event-stream"
                else:
                    data, kind = json.dumps(chunk).encode(), "application/json"
                self.send_response(200)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _parts(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if not body.get("tools"):
            return [{"text": json.dumps({"reasoning": "done", "next_speaker": "user"})}]
        with self._lock:
            n = len(self.requests)
            self.requests.append(body)
        if n < len(self.commands):
            call = {"name": "run_shell_command", "args": {"command": self.commands[n]}}
            return [{"functionCall": call}]
        return [{"text": self.last}]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> GeminiApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def shown(self) -> str:
        """Everything the main loop's requests showed the model, as text."""
        return json.dumps(self.requests)
