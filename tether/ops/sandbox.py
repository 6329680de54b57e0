"""Every agent process Tether starts runs in a sandbox: Anthropic's sandbox runtime (`srt`,
npm `@anthropic-ai/sandbox-runtime`, pinned in deploy/sandbox/), which puts the process in
bubblewrap's user, mount, PID and network namespaces, gives it no network but two proxies on
the host that allow only the hosts listed, and keeps secrets out of it by masking: the process
holds a placeholder, the proxy puts the real value back toward the hosts named for it.

What the agent sees: its worktree and its home (`$TETHER_HOME/agents/NAME`) read-write, the
system and Tether's own code read-only. Hidden: `$TETHER_HOME` (keys, stack.json, PostgreSQL's
data, other agents' homes and worktrees), the worker's HOME, the founder's checkouts of the
repositories (the agent commits in its worktree, whose git database it shares), other
processes. What it reaches: the gateway, its runtime's model API, and what `tether.toml` lists
under the agent's `network`. Every connection refused is told to Tether (`Launcher.events`).

docs/decisions.md says why srt, what it measured, and what the sandbox cannot stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tether.errors import TetherError
from tether.runtimes import RUNTIMES

LAUNCHER = Path(__file__).with_name("sandbox_launch.mjs")
# Where `./run` installs the pinned sandbox runtime (deploy/sandbox/package.json and its lock).
RUNTIME_DIR = Path(__file__).resolve().parents[2] / "deploy" / "sandbox"
RUNTIME_ENV = "TETHER_SANDBOX_RUNTIME"
# The hosts each runtime's model API is on, when its own variables do not name another (each
# runtime's module says; a "command" agent has none).
MODEL_HOSTS: dict[str, list[str]] = {r.name: list(r.model_hosts) for r in RUNTIMES.values()}
# Variables whose value is a URL the runtime talks to (its model API, elsewhere than default).
URL_VARIABLES = (
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
    "GEMINI_API_BASE_URL",
)
# Keys a runtime sends to its model API: masked like the `secret_env` credentials.
KEY_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
)
# Clients that honour these would go around the proxy for loopback and private addresses,
# where the sandbox's empty network has nothing: through the proxy, they reach what is allowed
# (the gateway on 127.0.0.1) and every refusal is audited.
CLEARED = ("NO_PROXY", "no_proxy")
REFUSAL_REASON = (
    "Tether's sandbox allows this agent the gateway, its model API and the hosts tether.toml "
    "lists under its `network`; ask the founder to add the host there if the work needs it"
)
HOW_TO_INSTALL = (
    "install them with `./run up` (Debian/Ubuntu: apt-get install bubblewrap socat ripgrep; "
    'npm ci in deploy/sandbox), or set isolation = "none" for this agent in tether.toml to '
    "run it unsandboxed, with everything your user can read and reach"
)


# What the worker's user may read on the system that an agent never needs (as root: the
# password hashes; any user: the host's own SSH and TLS private keys).
SYSTEM_SECRETS = ("/etc/shadow", "/etc/gshadow", "/etc/ssh", "/etc/ssl/private")


# What a commit on the agent's branch writes in the repository's `.git` (besides the worktree's
# own folder there): the objects, the branch, its reflog.
GIT_WRITTEN = ("objects", "refs", "logs")


def _worktree_gitdir(worktree: Path) -> Path | None:
    """A git worktree's own folder in its repository (`.git/worktrees/NAME`), from its `.git`
    file; None for a plain folder or a clone."""
    try:
        line = (worktree / ".git").read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not line.startswith("gitdir:"):
        return None
    return (worktree / line.removeprefix("gitdir:").strip()).resolve()


class SandboxUnavailable(TetherError):
    """This host cannot sandbox an agent: the one line says why and what to do."""


def runtime_dir() -> Path:
    configured = os.environ.get(RUNTIME_ENV)
    return Path(configured).expanduser() if configured else RUNTIME_DIR


def srt_entry(folder: Path) -> Path:
    return folder / "node_modules" / "@anthropic-ai" / "sandbox-runtime" / "dist" / "index.js"


@cache
def _userns_refusal() -> str | None:
    """Why bubblewrap cannot make the namespaces here, or None when it can."""
    try:
        done = subprocess.run(
            [
                "bwrap",
                "--unshare-user",
                "--unshare-pid",
                "--unshare-net",
                "--ro-bind",
                "/",
                "/",
                "--",
                "/bin/true",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap did not run: {exc}"
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[:200] or f"exit {done.returncode}"
        return f"this host gives no user namespaces to bubblewrap ({said})"
    return None


def host_refusal() -> str | None:
    """Why this host cannot sandbox agents, or None when it can (`tether doctor`, `tether up`,
    and every `tether run` of a sandboxed agent ask it)."""
    if not sys.platform.startswith("linux"):
        return f"Tether sandboxes agents on Linux only (this is {sys.platform})"
    missing = [tool for tool in ("node", "bwrap", "socat", "rg") if shutil.which(tool) is None]
    if missing:
        return f"the sandbox needs {', '.join(missing)} on the PATH, which this host lacks"
    if not srt_entry(runtime_dir()).is_file():
        return f"the sandbox runtime (srt) is not installed in {runtime_dir()}"
    return _userns_refusal()


def require_sandbox(agent: str) -> None:
    """Refuse, in one line, to start `agent` where this host cannot sandbox it."""
    why = host_refusal()
    if why is not None:
        raise SandboxUnavailable(
            f"Tether will not run {agent} unsandboxed: {why}; {HOW_TO_INSTALL}"
        )


def _host_port(url: str) -> tuple[str, int | None] | None:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    if port is None:
        port = 443 if parts.scheme == "https" else 80 if parts.scheme == "http" else None
    return parts.hostname, port


def _is_loopback(host: str) -> bool:
    return host == "localhost" or host.startswith("127.") or host == "::1"


def _entries(host: str, port: int | None) -> list[str]:
    """Allow-list entries for one destination: a loopback name is also allowed as 127.0.0.1
    (srt lets `localhost` resolve only to an allow-listed literal)."""
    entry = f"{host}:{port}" if port else host
    if host == "localhost" and port:
        return [entry, f"127.0.0.1:{port}"]
    return [entry]


@dataclass
class Walls:
    """What one agent process sees and reaches (built by `walls`, from tether.toml)."""

    agent: str
    worktree: Path
    home: Path
    hidden: list[Path]
    readable: list[Path]
    writable: list[Path]
    # Inside what it may write, what it may not: the files that say which hooks its runtime runs.
    protected: list[Path]
    hosts: list[str]
    # Variables whose values the process must not hold: masked toward these hosts (none: the
    # variable is withheld).
    masked: dict[str, list[str]] = field(default_factory=dict)
    # The gateway's host, and the certificate a TLS gateway is verified by.
    gateway: str = ""
    gateway_ca: Path | None = None

    def srt_settings(self) -> dict[str, Any]:
        plaintext = all(_is_loopback(h) for hosts in self.masked.values() for h in hosts)
        network: dict[str, Any] = {"allowedDomains": self.hosts, "deniedDomains": []}
        settings: dict[str, Any] = {
            # By absolute path: the launcher runs with the agent's PATH.
            "bwrapPath": shutil.which("bwrap") or "bwrap",
            "socatPath": shutil.which("socat") or "socat",
            "ripgrep": {"command": shutil.which("rg") or "rg"},
            "git": {"safeDirectories": [str(self.worktree)]},
            "network": network,
            "filesystem": {
                "denyRead": [str(p) for p in self.hidden],
                "allowRead": [str(p) for p in self.readable],
                "allowWrite": [str(p) for p in self.writable],
                "denyWrite": [str(p) for p in self.protected],
            },
        }
        if self.masked:
            settings["credentials"] = {
                # A secret with no host to go to is withheld outright.
                "envVars": [
                    {"name": name, "mode": "mask", "injectHosts": hosts}
                    if hosts
                    else {"name": name, "mode": "deny"}
                    for name, hosts in sorted(self.masked.items())
                ],
                # Over plain HTTP only to a model server on this machine; anywhere else the real
                # value leaves only over TLS that the proxy verified.
                "allowPlaintextInject": plaintext,
            }
            if not plaintext:
                # The gateway's TLS is the agent's own to verify, end to end: never terminated.
                network["tlsTerminate"] = {
                    "excludeDomains": [self.gateway] if self.gateway else [],
                    "extraCaCertPaths": [str(self.gateway_ca)] if self.gateway_ca else [],
                }
        return settings


def agent_home(tether_home: Path, agent: str, configured: str | None) -> Path:
    """The sandboxed agent's HOME: `$TETHER_HOME/agents/NAME`, or `run.home` when it names a
    folder of its own (never the worker's HOME, never elsewhere in TETHER_HOME)."""
    own = tether_home / "agents" / agent
    if not configured:
        return own
    home = Path(configured).expanduser().resolve()
    worker = Path.home().resolve()
    if home == worker or worker.is_relative_to(home):
        raise TetherError(
            f"agent {agent}'s run.home is the worker's own HOME ({home}): a sandboxed agent "
            "never gets it; remove run.home to use its own home under TETHER_HOME/agents"
        )
    if home.is_relative_to(tether_home.resolve()) and not home.is_relative_to(own.resolve()):
        raise TetherError(
            f"agent {agent}'s run.home ({home}) is inside TETHER_HOME, which the sandbox "
            f"hides; remove run.home to use {own}"
        )
    return home


def walls(
    *,
    agent: str,
    runtime: str,
    worktree: Path,
    home: Path,
    tether_home: Path,
    gateway_url: str,
    repositories: list[Path],
    network: list[str],
    env: dict[str, str],
    secret_names: list[str],
    gateway_ca: Path | None = None,
) -> Walls:
    """The sandbox of one agent process, from what tether.toml says of it."""
    hidden = [tether_home, *repositories, *(Path(p) for p in SYSTEM_SECRETS if os.path.lexists(p))]
    worker_home = Path.home()
    if worker_home != Path("/") and worker_home != home:
        hidden.append(worker_home)
    writable = [worktree, home]
    readable = [worktree, home]
    # A worktree's git database is its repository's `.git`: readable, and writable only where a
    # commit on the agent's branch writes (never `.git/hooks` or `.git/config`, which run and
    # configure the founder's own git), while the founder's checkout around it stays hidden.
    gitdir = _worktree_gitdir(worktree)
    for repo in repositories:
        database = (repo / ".git").resolve()
        if gitdir is None or not gitdir.is_relative_to(database):
            continue
        # Entry by entry: srt binds a readable folder over the writable ones inside it.
        writable += [database / name for name in GIT_WRITTEN]
        writable.append(gitdir)
        readable += [
            entry
            for entry in sorted(database.iterdir())
            if entry.name not in GIT_WRITTEN and entry.name != "worktrees"
        ]
    # Tether's hooks, as installed for the run: the agent cannot take them out mid-session.
    protected = [
        folder / ".claude" / name
        for folder in (worktree, home)
        for name in ("settings.json", "settings.local.json")
    ]
    protected.append(worktree / ".claude" / "hooks")
    # Tether's own code and the Python that runs the hooks, wherever the founder keeps them.
    # (A hidden folder inside one of these stays hidden: srt keeps the narrower deny.)
    readable += [Path(sys.prefix), Path(sys.base_prefix), Path(__file__).resolve().parents[2]]
    readable.append(runtime_dir())
    if gateway_ca is not None:
        readable.append(gateway_ca)  # the certificate alone, never the key beside it
    hosts: list[str] = []
    gateway = _host_port(gateway_url)
    gateway_entries = _entries(*gateway) if gateway is not None else []
    hosts += gateway_entries
    model_hosts: list[str] = list(MODEL_HOSTS.get(runtime, []))
    for variable in URL_VARIABLES:
        if env.get(variable):
            found = _host_port(env[variable])
            if found is not None:
                hosts += _entries(*found)
                model_hosts.append(found[0])
    hosts += [h for h in MODEL_HOSTS.get(runtime, []) if h not in hosts]
    hosts += [h for h in network if h not in hosts]
    gateway_host = gateway[0] if gateway else ""
    # Where a secret may be put back: every allowed host but the gateway (srt injects by host,
    # not port, so a model server on the gateway's own host shares that host's injection).
    secret_hosts = sorted({h.partition(":")[0] for h in hosts if h not in gateway_entries})
    masked = {name: secret_hosts for name in secret_names}
    for name in KEY_VARIABLES:
        if env.get(name):
            masked[name] = sorted(set(model_hosts)) or secret_hosts
    return Walls(
        agent=agent,
        worktree=worktree,
        home=home,
        hidden=hidden,
        readable=readable,
        writable=writable,
        protected=protected,
        hosts=list(dict.fromkeys(hosts)),
        masked={k: v for k, v in masked.items() if env.get(k)},
        gateway=gateway_host,
        gateway_ca=gateway_ca,
    )


@dataclass
class Plan:
    """One sandboxed start's plan: srt's settings and the agent's argv, working folder and
    environment (the secrets the proxy injects among them, so it goes to the launcher over a
    pipe and never touches a disk), and `private`, the folder of srt's own sockets."""

    data: bytes = field(repr=False)
    private: Path

    def discard(self) -> None:
        shutil.rmtree(self.private, ignore_errors=True)


@dataclass
class Launcher:
    """A sandbox launcher, started before it knows what it will run: node is up and srt loaded,
    waiting for its plan on a pipe (`send`). The launcher tells Tether what the sandbox refused
    on `events` (the read end of a pipe the agent never holds)."""

    process: asyncio.subprocess.Process
    events: int
    _plan: int
    private: Path | None = None

    async def send(self, plan: Plan) -> None:
        """Hand the launcher its plan; it starts the agent's process in the sandbox."""
        self.private = plan.private
        fd, self._plan = self._plan, -1
        loop = asyncio.get_running_loop()
        # The pipe's far end is read at once (or the launcher is gone: then its exit tells).
        transport, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(fd, "wb", 0))
        transport.write(plan.data)
        transport.close()  # after what is buffered is written: the launcher reads to the end

    def done(self) -> None:
        if self.private is not None:
            shutil.rmtree(self.private, ignore_errors=True)
        for which in ("_plan", "events"):
            # Once only: the number may belong to another file after it is closed.
            fd = getattr(self, which)
            if fd >= 0:
                setattr(self, which, -1)
                with contextlib.suppress(OSError):
                    os.close(fd)


async def start_launcher(**spawn: Any) -> Launcher:
    """A launcher process, waiting for its plan; `spawn`: asyncio.create_subprocess_exec's
    arguments for it (its stdio, session, environment: node, bwrap and socat on its PATH)."""
    plan_read, plan_write = os.pipe()
    events_read, events_write = os.pipe()
    node = shutil.which("node", path=(spawn.get("env") or os.environ).get("PATH")) or "node"
    try:
        process = await asyncio.create_subprocess_exec(
            node,
            str(LAUNCHER),
            str(runtime_dir()),
            str(plan_read),
            str(events_write),
            pass_fds=(plan_read, events_write),
            **spawn,
        )
    except BaseException:
        for fd in (plan_write, events_read):
            os.close(fd)
        raise
    finally:
        for fd in (plan_read, events_write):
            os.close(fd)
    return Launcher(process=process, events=events_read, _plan=plan_write)


class Launchers:
    """Launchers started ahead of their plans, one spare at a time: an agent's start then pays
    neither node's start nor srt's loading, the larger part of what the sandbox adds to it
    (scripts/bench_sandbox.py). A spare holds nothing of any agent's until its plan comes."""

    def __init__(self, **spawn: Any) -> None:
        self._spawn = spawn
        self._spare: asyncio.Task[Launcher] | None = None

    async def take(self) -> Launcher:
        """A launcher for one start (the spare when it is alive); the next spare starts now."""
        spare, self._spare = self._spare, None
        launcher = None
        if spare is not None:
            with contextlib.suppress(Exception):
                launcher = await spare
            if launcher is not None and launcher.process.returncode is not None:
                launcher.done()
                launcher = None
        if launcher is None:
            launcher = await start_launcher(**self._spawn)
        self._spare = asyncio.create_task(start_launcher(**self._spawn))
        return launcher

    async def close(self) -> None:
        """End the spare: its plan pipe closes, and a launcher with no plan exits."""
        spare, self._spare = self._spare, None
        if spare is None:
            return
        try:
            launcher = await spare
        except Exception:
            return
        launcher.done()
        with contextlib.suppress(ProcessLookupError):
            await asyncio.wait_for(launcher.process.wait(), 10)


def prepare(sandbox: Walls, argv: list[str], cwd: Path, env: dict[str, str]) -> Plan:
    """The launch plan of `argv` in `sandbox`."""
    # srt protects a path that does not exist yet by mounting an empty read-only folder at its
    # first missing parent: the folders the protected files live in are made here, so that the
    # runtime can still write the rest of them (Claude Code keeps its state in ~/.claude).
    for folder in (
        sandbox.home,
        *(p for p in sandbox.writable if p != sandbox.worktree),
        *(p.parent for p in sandbox.protected),
    ):
        folder.mkdir(parents=True, exist_ok=True)
    tmp = sandbox.home / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    tmp.chmod(0o700)
    inside = {
        # Commits are the agent's own (its home has no git identity of the founder's).
        "GIT_AUTHOR_NAME": sandbox.agent,
        "GIT_AUTHOR_EMAIL": f"{sandbox.agent}@agents.tether",
        "GIT_COMMITTER_NAME": sandbox.agent,
        "GIT_COMMITTER_EMAIL": f"{sandbox.agent}@agents.tether",
        **env,
        "HOME": str(sandbox.home),
        # The system's /tmp is shared by every agent and read-only in the sandbox.
        "TMPDIR": str(tmp),
        "CLAUDE_CODE_TMPDIR": str(tmp),
    }
    # srt's proxy sockets: a short path (a socket's is at most 108 bytes). The bridge inside the
    # sandbox needs the folder; the key of srt's TLS-terminating CA in it stays hidden.
    private = Path(tempfile.mkdtemp(prefix="tether-srt-"))
    settings = sandbox.srt_settings()
    settings["filesystem"]["denyRead"].append(f"{private}/**/ca.key")
    data = json.dumps(
        {
            "srt": settings,
            "tether": {
                "argv": argv,
                "cwd": str(cwd),
                "env": inside,
                "unset": list(CLEARED),
                "private_tmp": str(private),
                "refusal_reason": REFUSAL_REASON,
            },
        }
    ).encode()
    return Plan(data=data, private=private)


def refusal(line: bytes) -> tuple[str, int | None, str] | None:
    """(host, port, detail) of one `refused` line the launcher wrote, or None."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("event") != "refused":
        return None
    port = event.get("port")
    return (
        str(event.get("host") or "?")[:253],
        port if isinstance(port, int) else None,
        str(event.get("detail") or "")[:300],
    )
