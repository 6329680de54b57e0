"""A scripted OpenAI Responses API on 127.0.0.1, for driving the real Codex CLI offline.

Codex is pointed at it as a custom model provider (`model_providers.<id>.base_url`,
`wire_api = "responses"`, a dummy key). Each POST to `.../responses` gets the next scripted turn
as Server-Sent Events: `response.created`, one `response.output_item.done` (an `exec_command`
function call, or an assistant message), `response.completed` with the usage. Every request is
logged, so a test can read what the model was shown (a tool call's output, a hook's denial).
The event shapes follow Codex's own test support (openai/codex
codex-rs/core/tests/common/responses.rs: ev_response_created, ev_function_call,
ev_assistant_message, ev_completed).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from tether.ops.loopback import LoopbackServer, QuietHandler, read_json, respond


@dataclass
class CodexTurn:
    """One answer: a shell command (Codex's `exec_command`), or a final message."""

    command: str | None = None
    text: str = ""
    input_tokens: int = 1000
    output_tokens: int = 20


@dataclass
class ResponsesApi:
    turns: list[CodexTurn]
    # After the script: this message, every time.
    last: str = "Done."
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        api = self
        self._lock = threading.Lock()

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = read_json(self)
                with api._lock:
                    n = len(api.requests)
                    api.requests.append(body)
                respond(self, 200, api._answer(n), "text/event-stream")

            def do_GET(self) -> None:
                respond(self, 404)

        self._http = LoopbackServer(Handler)

    @property
    def url(self) -> str:
        return f"{self._http.url}/v1"

    def __enter__(self) -> ResponsesApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stop()

    def _answer(self, n: int) -> bytes:
        turn = self.turns[n] if n < len(self.turns) else CodexTurn(text=self.last)
        if turn.command is not None:
            # `login: false`: the shell keeps the environment Codex was given (its PATH).
            arguments = json.dumps({"cmd": turn.command, "login": False})
            item: dict[str, Any] = {
                "type": "function_call",
                "call_id": f"call_{n}",
                "name": "exec_command",
                "arguments": arguments,
            }
        else:
            item = {
                "type": "message",
                "role": "assistant",
                "id": f"msg_{n}",
                "content": [{"type": "output_text", "text": turn.text}],
            }
        usage = {
            "input_tokens": turn.input_tokens,
            "input_tokens_details": None,
            "output_tokens": turn.output_tokens,
            "output_tokens_details": None,
            "total_tokens": turn.input_tokens + turn.output_tokens,
        }
        events = [
            {"type": "response.created", "response": {"id": f"resp_{n}"}},
            {"type": "response.output_item.done", "item": item},
            {"type": "response.completed", "response": {"id": f"resp_{n}", "usage": usage}},
        ]
        return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()

    def tool_outputs(self, n: int) -> list[str]:
        """The tool results request `n` showed the model."""
        items = self.requests[n].get("input") or []
        return [
            str(i.get("output"))
            for i in items
            if isinstance(i, dict) and i.get("type") == "function_call_output"
        ]
