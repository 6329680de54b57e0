"""The test session starts real servers itself: Temporal's dev server and embedded PostgreSQL.

Set DATABASE_URL to use an existing PostgreSQL instead of the embedded one.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import worker as tether_worker
from tests.support import keys
from tests.support.helpers import DatabaseUrl, FakeForge, HttpService, clean_environment
from tether.client import connect
from tether.client.connection import Sealing
from tether.config import TetherConfig
from tether.ops.stack import (
    EmbeddedPostgres,
    ensure_search_attributes,
    free_port,
    start_temporal_dev_server,
    temporal_test_server_binary,
)
from tether.store import Store, connect_pool, migrate

# Every workflow under test runs in Temporal's sandbox: workflow code that is not deterministic
# fails the test that runs it (production workers run without it; workflows/registry.py).
os.environ.setdefault("TETHER_WORKFLOW_SANDBOX", "on")

_exit_status: int | None = None
SUGGEST_CONTINUE_AS_NEW_AFTER = 40


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # Temporal's native threads can crash the interpreter during finalisation (DESIGN.md, known
    # hazards). Every server and worker is shut down by the fixtures inside the event loop; then
    # the real status is reported without finalising. A crash during a test still fails it: the
    # process dies before reaching this point.
    if _exit_status is not None and os.environ.get("TETHER_TEST_NO_HARD_EXIT") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        yield DatabaseUrl(os.environ["DATABASE_URL"])
        return
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", port=free_port())
    pg.start()
    try:
        yield DatabaseUrl(pg.url)
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def temporal_http_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
async def temporal_env(temporal_http_port: int) -> AsyncIterator[WorkflowEnvironment]:
    # Temporal suggests continue-as-new after a few dozen events here, so every test also
    # exercises carrying a task's state across runs. The HTTP API serves the agents' hooks.
    env = await start_temporal_dev_server(
        port=free_port(),
        ui_port=None,
        http_port=temporal_http_port,
        db_file=None,
        extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AFTER}",
        ],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def temporal_http(temporal_env: WorkflowEnvironment, temporal_http_port: int) -> str:
    return f"http://127.0.0.1:{temporal_http_port}"


@pytest.fixture(scope="session")
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


@pytest.fixture(scope="session")
async def client(temporal_address: str) -> Client:
    """The founder's client: it seals what it sends with the test founder key."""
    return await connect(temporal_address, "default", signer=keys.FOUNDER)


@pytest.fixture(scope="session")
async def store(database_url: str) -> AsyncIterator[Store]:
    pool = await connect_pool(database_url)
    await migrate(pool)
    try:
        yield Store(pool)
    finally:
        await pool.close()


@pytest.fixture
def config(tmp_path: Path) -> TetherConfig:
    return TetherConfig()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def worker(
    client: Client, store: Store, config: TetherConfig, task_queue: str
) -> AsyncIterator[Worker]:
    w = tether_worker.build_worker(client, task_queue, store, config, keys.KEYS)
    async with w:
        yield w


@pytest.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    # The same converter as tether.client.connect; time skipping needs the environment's own client.
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=temporal_test_server_binary(),
        # The tests act as the founder: what they send is sealed with the founder's key.
        interceptors=[Sealing(keys.FOUNDER)],
    )
    try:
        await ensure_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def http_service() -> Iterator[HttpService]:
    service = HttpService()
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def task_id() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def fresh_db(database_url: str) -> AsyncIterator[str]:
    """A new, empty database on the session's server."""
    name = f"fresh_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = database_url.rpartition("/")
    try:
        yield DatabaseUrl(f"{base}/{name}")
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def forge() -> Iterator[FakeForge]:
    """A forge on 127.0.0.1 that knows the valid test token."""
    from tests.support.sessions import VALID_TOKEN

    f = FakeForge()
    f.tokens.add(VALID_TOKEN)
    try:
        yield f
    finally:
        f.stop()


@pytest.fixture
def valid_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.sessions import TOKEN_ENV, VALID_TOKEN

    monkeypatch.setenv(TOKEN_ENV, VALID_TOKEN)


@pytest.fixture
def cli_env(
    tmp_path: Path, temporal_address: str, database_url: str, worker: Worker
) -> dict[str, str]:
    return clean_environment(
        TETHER_HOME=str(keys.write(tmp_path / "home")),
        TEMPORAL_ADDRESS=temporal_address,
        DATABASE_URL=database_url,
        TETHER_TASK_QUEUE=worker.task_queue,
    )


@pytest.fixture
def up_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "TETHER_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        TETHER_HOME=str(tmp_path / "home"),
        TETHER_TEMPORAL_PORT=str(free_port()),
        TETHER_UI_PORT=str(free_port()),
        TETHER_HTTP_PORT=str(free_port()),
        TETHER_POSTGRES_PORT=str(free_port()),
        TETHER_GATEWAY_BIND=f"127.0.0.1:{free_port()}",
    )
    return env
