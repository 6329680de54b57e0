"""What the `tether` commands share: the client and the store, opened on first use (the read
commands import neither), the founder's key and signed orders, JSON and marks."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tether.cli import cockpit
from tether.config import Settings
from tether.contracts import FounderOrder

if TYPE_CHECKING:
    from temporalio.client import Client


class _Later:
    """A module imported on first use: the read-only commands (task list, inbox, budget show)
    answer from PostgreSQL without importing the Temporal SDK (about 0.5 s of a command)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self._name), attr)


async def connect(*args: Any, **kw: Any) -> Client:
    from tether.client import connect as connect_now

    return await connect_now(*args, **kw)


ARTIFACT_FORMS = "url:URL | file:PATH | deploy:SERVICE | commit:REPO[@BRANCH][:PATH]"


# Set by Tether in the environment of every agent it runs: its `tether` commands are its own.
AGENT_ENV = "TETHER_AGENT"


def agent_option(p: argparse.ArgumentParser, said: str) -> None:
    """`--agent NAME`: required, unless the command runs in an agent Tether started (the agent's
    own name is in TETHER_AGENT; its token says the same to the gateway)."""
    own = os.environ.get(AGENT_ENV) or None
    p.add_argument(
        "--agent", required=own is None, default=own, help=f"{said} (default: ${AGENT_ENV})"
    )


def pass_mark(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


async def founder_client(settings: Settings) -> Client:
    """Temporal, sealing with the founder's key when this machine holds it ($TETHER_HOME/
    founder.key): the founder's commands. Without it, messages that change state are refused."""
    from tether.ops.stackfile import temporal_address
    from tether.trust.keys import founder_signer

    return await connect(
        temporal_address(settings), settings.namespace, signer=founder_signer(settings)
    )


async def open_store(settings: Settings) -> Any:
    from tether.ops.stackfile import database_url
    from tether.store import Store, connect_pool

    return Store(await connect_pool(database_url(settings)))


@contextlib.asynccontextmanager
async def opened_store(settings: Settings) -> AsyncIterator[Any]:
    """The read model for one command, closed when it is done."""
    store = await open_store(settings)
    try:
        yield store
    finally:
        await store.pool.close()


KEY_HELP = "the founder's private key (default $TETHER_HOME/founder.key)"


def founder_order(
    args: argparse.Namespace, settings: Settings, action: str, subject: str
) -> FounderOrder | None:
    """An order signed with the founder's key (--key, else $TETHER_HOME/founder.key if it
    exists): what lifts a governor's hold. Without a key the action goes unsigned, which is
    enough for holds the founder set but refused for the governors'."""
    from tether.trust.signing import load_private, order

    path = founder_key(args, settings)
    if path is None:
        return None
    return order(action, subject, args.by, args.reason or "", load_private(path))


def founder_key(args: argparse.Namespace, settings: Settings) -> Path | None:
    """The founder's private key file: --key, else $TETHER_HOME/founder.key if it exists."""
    from tether.trust.signing import PRIVATE_KEY_FILE

    if getattr(args, "key", None):
        return Path(args.key)
    path = settings.home / PRIVATE_KEY_FILE
    return path if path.exists() else None


if TYPE_CHECKING:
    # Type-checked as the modules they are: every call below is checked against the client.
    import tether.client as api
    import tether.client.agent as agent_client
else:
    api = _Later("tether.client")
    agent_client = _Later("tether.client.agent")


print_json = cockpit.print_json
colour_option = cockpit.colour_option

__all__ = [
    "ARTIFACT_FORMS",
    "KEY_HELP",
    "agent_client",
    "api",
    "colour_option",
    "connect",
    "founder_client",
    "founder_key",
    "founder_order",
    "open_store",
    "opened_store",
    "pass_mark",
    "print_json",
]
