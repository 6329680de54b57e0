"""The one object the worker, the gateway, the client and the CLI hold: every table's rows over
one pool. Each part is its own module; this only puts them together."""

from __future__ import annotations

import asyncpg

from tether.store.audit import Audit
from tether.store.deployments import Deployments
from tether.store.inbox import Inbox
from tether.store.ledger import Ledger
from tether.store.passkeys import Passkeys
from tether.store.refusals import Refusals
from tether.store.retention import Retention
from tether.store.sessions import Sessions
from tether.store.tasks import Tasks
from tether.store.tokens import Tokens


class Store(
    Tasks, Sessions, Inbox, Deployments, Ledger, Tokens, Refusals, Audit, Passkeys, Retention
):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
