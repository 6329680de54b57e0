"""The scripted model server (the demo's and the tests' Anthropic Messages API): a client that
goes away in the middle of a request — an agent's process the runner ended while its model call
was in flight, which is a guardrail working — leaves no traceback on the terminal."""

from __future__ import annotations

import json
import socket
import struct
import time
from urllib.parse import urlparse

import pytest

from tether.ops.model_server import ModelApi, Turn


def test_a_client_that_went_away_mid_request_prints_nothing(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with ModelApi([Turn.say("a long answer " * 2000)] * 20) as api:
        where = urlparse(api.url)
        body = json.dumps(
            {
                "model": "claude-sonnet-4-5",
                "max_tokens": 64,
                "stream": True,
                "messages": [],
                "tools": [{"name": "Bash"}],  # the agent's own turn: the script's long answer
            }
        ).encode()
        for _ in range(20):
            conn = socket.create_connection((where.hostname, where.port))
            conn.sendall(
                b"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            conn.recv(64)  # the answer has begun streaming
            # Gone, with a reset (as a killed process's socket goes).
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        deadline = time.monotonic() + 10
        while api.turns_served < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert api.turns_served == 20  # each answer went on into a closed socket
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Exception occurred" not in captured.err, (
        captured.err[-2000:]
    )
