"""A throwaway stack for the scripts: embedded PostgreSQL (migrated) and a Temporal dev server on
free ports in a temporary folder, torn down on exit. Nothing the user runs is touched."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tether.client import connect  # noqa: E402
from tether.ops.stack import EmbeddedPostgres, free_port, start_temporal_dev_server  # noqa: E402
from tether.store import Store, connect_pool, migrate  # noqa: E402
from tether.trust import seals  # noqa: E402
from tether.trust.keys import load_private, write_key  # noqa: E402


@dataclass
class Throwaway:
    client: Client  # sealed with the founder's key
    store: Store
    folder: Path
    # Temporal's HTTP API, when asked for.
    http_url: str | None
    # The workers' trust and signer (for build_worker), and the gateway's signer.
    keys: tuple[seals.Trust, seals.Signer]
    gateway: seals.Signer
    address: str
    database_url: str
    # The servers themselves (the soak restarts PostgreSQL, reads Temporal's database file).
    postgres: EmbeddedPostgres
    temporal_db: Path | None

    def worker_env(self, task_queue: str, **extra: str) -> dict[str, str]:
        """The environment of a worker process (`python worker.py`) on this stack: its keys
        under TETHER_HOME, as `tether up` lays them out."""
        return {
            **os.environ,
            "TETHER_HOME": str(self.folder / "keys"),
            "TEMPORAL_ADDRESS": self.address,
            "DATABASE_URL": self.database_url,
            "TETHER_TASK_QUEUE": task_queue,
            "TETHER_CONFIG": str(self.folder / "tether.toml"),
            **extra,
        }


@asynccontextmanager
async def worker_processes(
    stack: Throwaway,
    task_queue: str,
    count: int = 1,
    config: str = "",
    bare: bool = False,
    **env: str,
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """`count` worker processes on `task_queue`, each started as users start one (`bare`: the
    baseline's, scripts/bare_worker.py), until each says it polls; stopped (SIGTERM, then
    SIGKILL) on exit. Each one's log is `<queue>-worker-<n>.log` in the stack's folder."""
    (stack.folder / "tether.toml").write_text(config)
    argv = (
        [str(ROOT / "scripts" / "bare_worker.py"), stack.address, task_queue]
        if bare
        else [str(ROOT / "worker.py")]
    )
    started: list[asyncio.subprocess.Process] = []
    try:
        for n in range(count):
            log = stack.folder / f"{task_queue}-worker-{n}.log"
            with log.open("wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, *argv, env=stack.worker_env(task_queue, **env), stderr=out
                )
            started.append(proc)
            while b"worker polling" not in log.read_bytes():
                if proc.returncode is not None:
                    raise RuntimeError(f"worker exited: {log.read_text()[-2000:]}")
                await asyncio.sleep(0.1)
        yield started
    finally:
        for proc in started:
            if proc.returncode is None:
                proc.terminate()
        for proc in started:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@asynccontextmanager
async def throwaway_stack(
    http_api: bool = False, temporal_db: bool = False
) -> AsyncIterator[Throwaway]:
    """`temporal_db`: Temporal keeps its record in a SQLite file in the folder (as `tether up`
    does), not in memory."""
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", port=free_port())
        pg.start()
        http_port = free_port() if http_api else None
        db_file = Path(tmp) / "temporal.db" if temporal_db else None
        env = await start_temporal_dev_server(
            port=free_port(), ui_port=None, http_port=http_port, db_file=db_file
        )
        home = Path(tmp) / "keys"
        signers = {}
        for role in seals.ROLES:
            path, _ = write_key(home, role)
            signers[role] = seals.Signer(role, load_private(path, role))
        trust = seals.Trust({role: (s.public_key,) for role, s in signers.items()})
        try:
            address = env.client.service_client.config.target_host
            client = await connect(address, "default", signer=signers["founder"])
            pool = await connect_pool(pg.url)
            try:
                await migrate(pool)
                http_url = f"http://127.0.0.1:{http_port}" if http_port else None
                yield Throwaway(
                    client,
                    Store(pool),
                    Path(tmp),
                    http_url,
                    (trust, signers["worker"]),
                    signers["gateway"],
                    address,
                    pg.url,
                    pg,
                    db_file,
                )
            finally:
                await pool.close()
        finally:
            await env.shutdown()
            pg.stop()


def _stat(pid: int) -> tuple[str, int, float, int] | None:
    """(command, parent pid, CPU seconds, resident bytes) of a live process, from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks, int(fields[21]) * page


def processes(labels: dict[int, str] | None = None) -> dict[str, tuple[float, int]]:
    """CPU seconds used so far and resident bytes now, per kind of process in this stack (this
    Python process and what it started: the Temporal server, worker processes, by `labels`
    for the pids given, else by command name)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = stat
    mine = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, (_, parent, _, _) in table.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                grew = True
    kinds: dict[str, tuple[float, int]] = {}
    for pid in mine:
        name, _, cpu, rss = table[pid]
        kind = "this process" if pid == os.getpid() else (labels or {}).get(pid, name.split()[0])
        kind = "postgres" if kind.startswith("postgres") else kind
        before = kinds.get(kind, (0.0, 0))
        kinds[kind] = (before[0] + cpu, before[1] + rss)
    return kinds
