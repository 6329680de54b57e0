"""A scripted OpenAI Responses API on 127.0.0.1, for driving the real Codex CLI offline.

Codex is pointed at it as a custom model provider (`model_providers.<id>.base_url`,
`wire_api = "responses"`, a dummy key). Each POST to `.../responses` gets the scripted turn that
follows the tool results it carries, as Server-Sent Events: `response.created`, one
`response.output_item.done` (an `exec_command` function call, or an assistant message),
`response.completed` with the usage. Every request is logged, so a test can read what the model
was shown (a tool call's output, a hook's denial).
The event shapes follow Codex's own test support (openai/codex
codex-rs/core/tests/common/responses.rs: ev_response_created, ev_function_call,
ev_assistant_message, ev_completed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.support.scripted_api import ScriptedApi


@dataclass
class CodexTurn:
    """One answer: a shell command (Codex's `exec_command`), or a final message."""

    command: str | None = None
    text: str = ""
    input_tokens: int = 1000
    output_tokens: int = 20


class ResponsesApi(ScriptedApi):
    def __init__(self, turns: list[CodexTurn], last: str = "Done.") -> None:
        super().__init__()
        self.turns = turns
        # After the script: this message, every time.
        self.last = last

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, bytes, str]:
        self.record(body)
        # The conversation, not the request count, says where the script is: a request Codex
        # repeats (a retry after a dropped stream) gets the same turn again, as a model would.
        return 200, self._answer(len(_outputs(body))), "text/event-stream"

    @property
    def url(self) -> str:
        return f"{self._http.url}/v1"

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
        return _outputs(self.requests[n])


def _outputs(body: dict[str, Any]) -> list[str]:
    """The tool results a request carries (Codex sends the whole conversation each time)."""
    items = body.get("input") or []
    return [
        str(i.get("output"))
        for i in items
        if isinstance(i, dict) and i.get("type") == "function_call_output"
    ]
