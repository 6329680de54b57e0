"""What an agent's `tether` commands ask, through the gateway with the agent's token.

An agent's machine holds no key Tether's workflows accept and needs no access to Temporal: with
TETHER_AGENT_TOKEN in its environment, `tether task claim|submit` and `tether session
note|recheck` post to the gateway (TETHER_GATEWAY_URL, else the stack.json of `tether up`),
which speaks for the agent the token names, and for no other.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from tether.client.calls import Refused
from tether.config import Settings
from tether.errors import TetherError
from tether.hook.wire import http_request

TOKEN_ENV = "TETHER_AGENT_TOKEN"


def agent_token() -> str | None:
    return os.environ.get(TOKEN_ENV, "").strip() or None


def gateway_url(settings: Settings) -> str:
    if settings.gateway_url:
        return settings.gateway_url.rstrip("/")
    from tether.ops.stackfile import read_stack_file

    stack = read_stack_file(settings.home) or {}
    return str(stack.get("gateway_url") or settings.gateway_address).rstrip("/")


async def ask(settings: Settings, path: str, body: dict[str, Any], wait: float = 150) -> Any:
    """POST to the gateway as the agent; the result, or a TetherError saying why not."""
    token = agent_token()
    if token is None:
        raise TetherError(f"{TOKEN_ENV} is not set")
    url = gateway_url(settings) + path
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    raw = json.dumps(body).encode()
    try:
        status, answer, _ = await asyncio.to_thread(http_request, "POST", url, raw, wait, headers)
    except OSError as exc:
        raise TetherError(
            f"Tether's gateway at {gateway_url(settings)} did not answer ({exc}); is `tether "
            "up` (or the gateway) running? Set TETHER_GATEWAY_URL to reach another one"
        ) from exc
    try:
        data = json.loads(answer or b"{}")
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    if status == 409:
        raise Refused(str(data.get("error") or "refused"))
    if status != 200:
        said = data.get("error")
        raise TetherError(f"the gateway refused: {said or f'HTTP {status}'}")
    return data.get("result")
