"""A real gateway for tests: the same server `tether up` runs, on a free port of 127.0.0.1,
sealing with the test gateway key, with tokens minted per agent in the real agent_tokens table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from tests.support import keys
from tether.config import TetherConfig
from tether.gateway.server import listening
from tether.store import Store


@dataclass
class GatewayRig:
    url: str
    store: Store
    _tokens: dict[str, str] = field(default_factory=dict)

    async def token(self, agent: str) -> str:
        """The agent's token (minted once per test, as the founder would)."""
        if agent not in self._tokens:
            self._tokens[agent] = await self.store.mint_agent_token(agent, "founder")
        return self._tokens[agent]


@asynccontextmanager
async def running_gateway(
    client: Client,
    store: Store,
    config: TetherConfig,
    task_queue: str,
    home: Path,
    tls: tuple[Path, Path] | None = None,
) -> AsyncIterator[GatewayRig]:
    async with listening(
        client, store, config, task_queue, home, "127.0.0.1:0", keys.GATEWAY, tls
    ) as url:
        yield GatewayRig(url, store)
