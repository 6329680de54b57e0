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
from typing import Any

from tether.ops.loopback import LoopbackServer, QuietHandler, read_json, respond


@dataclass
class GeminiApi:
    commands: list[str]
    last: str = "Done."
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        api = self
        self._lock = threading.Lock()

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                chunk = {
                    "candidates": [
                        {
                            "content": {"role": "model", "parts": api._parts(read_json(self))},
                            "finishReason": "STOP",
                        }
                    ],
                    "usageMetadata": {
                        "promptTokenCount": 1000,
                        "candidatesTokenCount": 20,
                        "totalTokenCount": 1020,
                    },
                }
                if "stream" in self.path:
                    sse = f"data: {json.dumps(chunk)}\r\n\r\n".encode()
                    respond(self, 200, sse, "text/event-stream")
                else:
                    respond(self, 200, json.dumps(chunk).encode())

            def do_GET(self) -> None:
                respond(self, 404)

        self._http = LoopbackServer(Handler)

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
        return self._http.url

    def __enter__(self) -> GeminiApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def shown(self) -> str:
        """Everything the main loop's requests showed the model, as text."""
        return json.dumps(self.requests)
