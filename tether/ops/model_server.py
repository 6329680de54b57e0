"""A scripted Anthropic Messages API on 127.0.0.1, for driving the real Claude Code CLI offline
(`tether demo --runtime claude-code`, and the tests).

Claude Code is pointed at it with `ANTHROPIC_BASE_URL` and a dummy key. Each request of the
agent's main loop (one that offers tools) gets the next scripted `Turn`: text, tool calls and
the usage figures the test wants the runtime to see, as Server-Sent Events when the request
streams (the CLI's normal path) or as one JSON message when it does not. Side requests the
CLI makes on its own (a title, a quota probe: no tools offered) get a short text answer and
are not part of the script. Every request is logged, so a test can read what the model was
shown: the brief, a hook's additional context, a tool result.

The wire format follows https://docs.anthropic.com/en/api/messages-streaming (message_start,
content_block_start/delta/stop, message_delta with the stop reason and output usage,
message_stop).
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tether.ops.loopback import QuietServer, read_body

MODEL = "claude-sonnet-4-5"


@dataclass
class Usage:
    input_tokens: int = 1000
    output_tokens: int = 50
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @property
    def context(self) -> int:
        """What Tether counts as the context in use after this response."""
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    def wire(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
        }


@dataclass
class Turn:
    """One answer of the model: optional text, then tool calls (name, input) in order."""

    text: str = ""
    tools: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    # An HTTP error instead of a message, e.g. (401, "authentication_error", "invalid x-api-key").
    error: tuple[int, str, str] | None = None

    @staticmethod
    def bash(command: str, usage: Usage | None = None, text: str = "") -> Turn:
        return Turn(text=text, tools=[("Bash", {"command": command})], usage=usage or Usage())

    @staticmethod
    def say(text: str, usage: Usage | None = None) -> Turn:
        return Turn(text=text, usage=usage or Usage())


@dataclass
class Request:
    path: str
    body: dict[str, Any]
    main: bool  # a request of the agent's loop (tools offered), answered from the script
    turn: int | None  # which scripted turn answered it

    def texts(self) -> list[str]:
        """Every text the model was shown: system prompt, messages, tool results."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, str):
                found.append(node)
            elif isinstance(node, list):
                for item in node:
                    walk(item)
            elif isinstance(node, dict):
                for key in ("text", "content"):
                    if key in node:
                        walk(node[key])

        walk(self.body.get("system"))
        walk(self.body.get("messages"))
        return found

    def shown(self) -> str:
        return "\n".join(self.texts())

    def last_tool_results(self) -> list[dict[str, Any]]:
        """The tool results in the request's last user message."""
        messages = self.body.get("messages") or []
        if not messages or not isinstance(messages[-1].get("content"), list):
            return []
        return [b for b in messages[-1]["content"] if b.get("type") == "tool_result"]


Script = Callable[[int, Request], Turn]


class ModelApi:
    """Serve `turns` (a list, or a function of the turn number and the request) until stopped.

    After the script is used up, the model says it is done and ends its turn."""

    def __init__(self, turns: list[Turn] | Script, *, model: str = MODEL) -> None:
        self.model = model
        self._script = turns
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self.turns_served = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                try:
                    body = json.loads(read_body(self) or b"{}")
                except ValueError:
                    body = {}
                api._answer(self, self.path.split("?")[0], body)

            def do_GET(self) -> None:
                api._send_json(self, 404, {"type": "error", "error": {"type": "not_found_error"}})

            do_HEAD = do_GET

        self._server = QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def claude_env(self, bin_dir: Path | None = None) -> dict[str, str]:
        """What Claude Code needs to run headless against this server, offline: its base URL,
        a dummy key, no update checks or telemetry. With `bin_dir`: a PATH of that folder, this
        Python's (for `tether`) and the system's."""
        env = {
            "ANTHROPIC_BASE_URL": self.url,
            "ANTHROPIC_API_KEY": "sk-ant-offline-dummy",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "IS_SANDBOX": "1",
        }
        if bin_dir is not None:
            env["PATH"] = f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin"
        return env

    def __enter__(self) -> ModelApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def main_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.main]

    # --- answering ------------------------------------------------------------------------

    def _next_turn(self, request: Request) -> Turn:
        with self._lock:
            n = self.turns_served
            self.turns_served += 1
            request.turn = n
            self.requests.append(request)
        script = self._script
        if callable(script):
            return script(n, request)
        if n < len(script):
            return script[n]
        return Turn.say("Done.", Usage(input_tokens=10, output_tokens=5))

    def _answer(self, handler: BaseHTTPRequestHandler, path: str, body: dict[str, Any]) -> None:
        if path.endswith("/count_tokens"):
            size = len(json.dumps(body)) // 4
            self._send_json(handler, 200, {"input_tokens": size})
            return
        if not path.endswith("/v1/messages"):
            with self._lock:
                self.requests.append(Request(path=path, body=body, main=False, turn=None))
            self._send_json(handler, 404, {"type": "error", "error": {"type": "not_found_error"}})
            return
        request = Request(path=path, body=body, main=bool(body.get("tools")), turn=None)
        if request.main:
            turn = self._next_turn(request)
        else:
            with self._lock:
                self.requests.append(request)
            turn = Turn.say("ok", Usage(input_tokens=10, output_tokens=2))
        if turn.error is not None:
            status, kind, said = turn.error
            error = {"type": "error", "error": {"type": kind, "message": said}}
            self._send_json(handler, status, error)
            return
        message = self._message(turn, str(body.get("model") or self.model))
        if body.get("stream"):
            self._send_stream(handler, message)
        else:
            self._send_json(handler, 200, message)

    def _message(self, turn: Turn, model: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if turn.text:
            content.append({"type": "text", "text": turn.text})
        for name, tool_input in turn.tools:
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{uuid.uuid4().hex[:24]}",
                    "name": name,
                    "input": tool_input,
                }
            )
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if turn.tools else "end_turn",
            "stop_sequence": None,
            "usage": turn.usage.wire(),
        }

    @staticmethod
    def _send_json(handler: BaseHTTPRequestHandler, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("request-id", f"req_{uuid.uuid4().hex[:20]}")
        handler.send_header("content-length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    def _send_stream(self, handler: BaseHTTPRequestHandler, message: dict[str, Any]) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("request-id", f"req_{uuid.uuid4().hex[:20]}")
        handler.send_header("connection", "close")
        handler.end_headers()
        for event, data in _events(message):
            handler.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
            handler.wfile.flush()
        handler.close_connection = True


def _events(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": block["text"]},
                },
            )
        else:
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {**block, "input": {}},
                },
            )
            yield (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": json.dumps(block["input"]),
                    },
                },
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        },
    )
    yield "message_stop", {"type": "message_stop"}
