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
from typing import Any

from tests.support.scripted_api import ScriptedApi


class GeminiApi(ScriptedApi):
    def __init__(self, commands: list[str], last: str = "Done.") -> None:
        super().__init__()
        self.commands = commands
        self.last = last

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, bytes, str]:
        chunk = {
            "candidates": [
                {"content": {"role": "model", "parts": self._parts(body)}, "finishReason": "STOP"}
            ],
            "usageMetadata": {
                "promptTokenCount": 1000,
                "candidatesTokenCount": 20,
                "totalTokenCount": 1020,
            },
        }
        if "stream" in path:
            return 200, f"data: {json.dumps(chunk)}\r\n\r\n".encode(), "text/event-stream"
        return 200, json.dumps(chunk).encode(), "application/json"

    def _parts(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        if not body.get("tools"):
            return [{"text": json.dumps({"reasoning": "done", "next_speaker": "user"})}]
        n = self.record(body)
        if n < len(self.commands):
            call = {"name": "run_shell_command", "args": {"command": self.commands[n]}}
            return [{"functionCall": call}]
        return [{"text": self.last}]

    def shown(self) -> str:
        """Everything the main loop's requests showed the model, as text."""
        return json.dumps(self.requests)
