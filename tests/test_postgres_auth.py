"""The embedded PostgreSQL asks every connection for its password (issue 28): a process that
reaches the port without the password file (an agent, before the sandbox even refuses it the
port) gets nothing; a data folder made by the old `initdb --auth=trust` is switched on the next
start, every row kept."""

from __future__ import annotations

import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tether.ops.stack import EmbeddedPostgres, _ensure_traversable, free_port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(tmp_path / "postgres", port=free_port())
    try:
        yield pg
    finally:
        pg.stop()


async def refused_without_password(pg: EmbeddedPostgres) -> str:
    with pytest.raises(asyncpg.InvalidPasswordError) as refused:
        await asyncpg.connect(pg.public_url)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(pg.public_url, password="guessed")
    return str(refused.value)


async def test_a_new_server_refuses_a_connection_without_its_password(
    server: EmbeddedPostgres,
) -> None:
    server.start()
    assert "password authentication failed" in await refused_without_password(server)
    assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
    conn = await asyncpg.connect(server.url)
    try:
        assert await conn.fetchval("SELECT current_database()") == "tether"
    finally:
        await conn.close()


async def test_a_trust_data_folder_is_switched_on_the_next_start_and_keeps_every_row(
    server: EmbeddedPostgres,
) -> None:
    # The data folder as Tether made it before, running, written by a client with no password.
    user = server._user()
    server.data_dir.mkdir(parents=True)
    if user:
        shutil.chown(server.data_dir, user)
        server.data_dir.chmod(0o700)
        _ensure_traversable(server.data_dir.parent)
    for tool, *args in (
        ("initdb", "-D", str(server.data_dir), "-U", "postgres", "--auth=trust"),
        (
            "pg_ctl",
            "-D",
            str(server.data_dir),
            "-l",
            str(server.data_dir / "server.log"),
            "-o",
            f"-h 127.0.0.1 -p {server.port} -k ''",
            "-w",
            "start",
        ),
    ):
        done = server._run(tool, *args, user=user)
        assert done.returncode == 0, done.stdout
    old = await asyncpg.connect(server.public_url.replace("/tether", "/postgres"))
    await old.execute("CREATE TABLE kept (n int); INSERT INTO kept SELECT generate_series(1, 100)")
    await old.close()

    server.start()  # the next `tether up`

    assert "password authentication failed" in await refused_without_password(server)
    hba = (server.data_dir / "pg_hba.conf").read_text()
    assert "trust" not in [ln.split()[-1] for ln in hba.splitlines() if ln.strip()[:1] not in "#"]
    conn = await asyncpg.connect(server.url.replace("/tether", "/postgres"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM kept") == 100
    finally:
        await conn.close()
    server.start()  # again: nothing left to switch
    conn = await asyncpg.connect(server.url.replace("/tether", "/postgres"))
    await conn.close()
