"""Every agent process Tether starts is a hostile tenant in its sandbox (issue 28): a real agent
program, started by the runner as `tether run` starts it, tries every escape a founder's own
user would allow, and every one fails; the work it is there for (a commit in its worktree, a
submit through the gateway, its model API with the key it never holds) succeeds."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from tests.support import keys
from tests.support.claude_code import ensure_claude_code
from tests.support.cli import tether
from tests.support.helpers import FakeForge, clean_environment, eventually, git
from tests.support.model_api import ModelApi, Turn
from tests.support.runner import (
    claude_runner,
    run_in_phase,
    run_on_a_task,
    set_runner,
    task_reaches,
)
from tests.support.sessions import VALID_TOKEN, running_team
from tether import client as api
from tether.contracts import RunRequest, ShellCheck, TaskSpec, TaskState
from tether.ops import sandbox

ROOT = Path(__file__).resolve().parent.parent

# The agent: each attempt's outcome into report.json in its worktree (the one place it writes).
ESCAPES = r"""
import json, os, pathlib, socket, subprocess, sys, urllib.request
cfg = json.loads(pathlib.Path(sys.argv[1]).read_text())
out = {}
def attempt(name, fn):
    try:
        out[name] = ["done", str(fn())[:300]]
    except BaseException as exc:
        out[name] = ["refused", f"{type(exc).__name__}: {exc}"[:300]]
def connect(port):
    socket.create_connection(("127.0.0.1", port), timeout=3).close()
    return "connected"
def founder_command():
    env = {**os.environ, "TETHER_HOME": cfg["founder_home"], "TEMPORAL_ADDRESS": cfg["temporal"],
           "DATABASE_URL": cfg["database"]}
    env.pop("TETHER_AGENT_TOKEN")
    done = subprocess.run([sys.executable, "-m", "tether", "task", "cancel", cfg["task"]],
                          env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        said = done.stderr.strip().splitlines() or [str(done.returncode)]
        raise RuntimeError(said[-1])
    return done.stdout
def model():
    request = urllib.request.Request(cfg["model"], headers={"x-api-key": os.environ["GH_TOKEN"]})
    return urllib.request.urlopen(request, timeout=10).status
def submit():
    done = subprocess.run([sys.executable, "-m", "tether", "task", "submit", cfg["task"],
                           "--agent", cfg["agent"]], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(done.stderr + done.stdout)
    return done.stdout
def commit():
    pathlib.Path("deliverable.txt").write_text("the work\n")
    for argv in (["git", "add", "deliverable.txt"], ["git", "commit", "-qm", "deliver"]):
        subprocess.run(argv, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
for key in cfg["keys"]:
    attempt("read " + pathlib.Path(key).name, lambda key=key: pathlib.Path(key).read_bytes())
attempt("list TETHER_HOME", lambda: os.listdir(cfg["founder_home"]))
environ = f"/proc/{cfg['worker_pid']}/environ"
attempt("read the worker's environment", lambda: open(environ, "rb").read())
attempt("read the worker's HOME", lambda: os.listdir(cfg["worker_home"]))
for name, port in cfg["ports"].items():
    attempt("connect to " + name, lambda port=port: connect(port))
attempt("PostgreSQL without a password", lambda: connect(cfg["ports"]["PostgreSQL"]))
def get(url):
    return urllib.request.urlopen(url, timeout=10).status
attempt("a host not allowed", lambda: get(cfg["unlisted"]))
attempt("a metadata address", lambda: get("http://169.254.169.254/"))
checkout, other = pathlib.Path(cfg["checkout"]), pathlib.Path(cfg["other"])
home = pathlib.Path(os.environ["HOME"])
(home / ".claude").mkdir(exist_ok=True)
attempt("write the founder's checkout", lambda: (checkout / "pwned").write_text("x"))
attempt("read the founder's checkout", lambda: (checkout / "README.md").read_text())
attempt("write another agent's worktree", lambda: (other / "pwned").write_text("x"))
def write(path, text):
    with open(path, "a") as handle:
        return handle.write(text)
gitdir = pathlib.Path(cfg["gitdir"])
attempt("take Tether's hooks out", lambda: write(".claude/settings.json", "{}"))
attempt("a hook in its own home", lambda: write(home / ".claude" / "settings.json", "{}"))
attempt("a git hook the founder's git runs", lambda: write(gitdir / "hooks" / "post-commit", "x"))
attempt("git config the founder's git reads", lambda: write(gitdir / "config", "x"))
attempt("read /etc/shadow", lambda: pathlib.Path("/etc/shadow").read_text())
attempt("a founder-only command", founder_command)
attempt("commit", commit)
attempt("model API", model)
attempt("submit", submit)
out["secret inside"] = os.environ.get("GH_TOKEN", "")
pathlib.Path("report.json").write_text(json.dumps(out, indent=1))
"""


class Recorder:
    """An HTTP server on 127.0.0.1 that keeps each request's x-api-key (the model API)."""

    def __init__(self) -> None:
        self.keys: list[str | None] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.keys.append(self.headers.get("x-api-key"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


async def test_an_agent_tries_every_escape_and_only_its_work_gets_through(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    temporal_address: str,
    temporal_http: str,
    recorder: Recorder,
    http_service: Any,
) -> None:
    assert sandbox.host_refusal() is None, sandbox.host_refusal()
    program = tmp_path / "escapes.py"
    program.write_text(ESCAPES)
    founder_home = keys.write(tmp_path / "tether-home")
    (founder_home / "stack.json").write_text(json.dumps({"database_url": fresh_db}))
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder, devops = team.agent("coder"), team.agent("devops")
        other = founder_home / "worktrees" / devops
        other.mkdir(parents=True)
        task_id = f"escape-{coder.rsplit('-', 1)[1]}"
        await api.create_task(
            client,
            team.task_queue,
            TaskSpec(id=task_id, title="Escape", checks=[ShellCheck(command="true")]),
        )
        await api.claim_task(client, task_id, coder)
        pg_port = int(fresh_db.rsplit(":", 1)[1].split("/")[0])
        cfg = {
            "keys": [
                str(founder_home / f"{role}.key") for role in ("founder", "worker", "gateway")
            ],
            "founder_home": str(founder_home),
            "worker_pid": os.getpid(),
            "worker_home": str(Path.home()),
            "ports": {
                "Temporal": int(temporal_address.rsplit(":", 1)[1]),
                "Temporal's HTTP API": int(temporal_http.rsplit(":", 1)[1]),
                "PostgreSQL": pg_port,
            },
            "unlisted": http_service.url,
            "checkout": str(team.repo),
            "gitdir": str(team.repo / ".git"),
            "other": str(other),
            "temporal": temporal_address,
            "database": fresh_db,
            "task": task_id,
            "agent": coder,
            "model": recorder.url,
        }
        (tmp_path / "escapes.json").write_text(json.dumps(cfg))
        set_runner(
            team,
            "coder",
            "command",
            command=[sys.executable, str(program), str(tmp_path / "escapes.json")],
            env={"ANTHROPIC_BASE_URL": recorder.url, "PYTHONPATH": str(ROOT)},
            secret_env={"GH_TOKEN": "github"},
        )
        await api.run_agent(
            client, team.task_queue, coder, "command", RunRequest(prompt="go", task_id=task_id)
        )
        await run_in_phase(client, coder, "finished", "the agent to finish", 120)

        worktree = founder_home / "worktrees" / coder
        report = json.loads((worktree / "report.json").read_text())
        allowed = ("commit", "model API", "submit")
        # Judged below: a listing shows at most the path down to what the agent may read, and a
        # write into a hidden folder lands in the sandbox's own empty tmpfs, never on the host.
        shown = ("list TETHER_HOME", "read the worker's HOME", "write the founder's checkout")
        escaped = {
            name: outcome
            for name, outcome in report.items()
            if name not in (*allowed, *shown, "secret inside") and outcome[0] != "refused"
        }
        assert not escaped, json.dumps(escaped, indent=1)
        for name in allowed:
            assert report[name][0] == "done", (name, report[name])
        # The secret was never in the agent; the model API got the real one from the proxy.
        assert report["secret inside"] and report["secret inside"] != VALID_TOKEN
        assert VALID_TOKEN not in json.dumps(report)
        assert recorder.keys == [VALID_TOKEN]
        listed = report["list TETHER_HOME"]
        assert listed[0] == "refused" or set(eval(listed[1])) <= {"agents", "worktrees"}, listed
        listed = report["read the worker's HOME"]
        if listed[0] == "done":
            on_the_way = {
                p.relative_to(Path.home()).parts[0]
                for p in (Path(sys.prefix), Path(sys.base_prefix), ROOT)
                if p.is_relative_to(Path.home())
            }
            assert set(eval(listed[1])) <= on_the_way, listed
        # Nothing was written where it must not be, and the founder's order was not obeyed.
        assert not (team.repo / "pwned").exists() and not (other / "pwned").exists()
        assert not (team.repo / ".git" / "hooks" / "post-commit").exists()
        assert not (team.repo / ".git" / "config").read_text().endswith("x")
        record = await team.store.get_task(task_id)
        assert record is not None and record.task.state != TaskState.CANCELLED
        # The commit is on the agent's branch, in the repository the founder reads.
        assert git(team.repo, "log", "-1", "--format=%s", f"tether/{coder}") == "deliver"
        # Each refused connection is audited with the agent and the host.
        refused = await team.store.egress_refusals(coder)
        hosts = {(r["host"], r["port"]) for r in refused}
        port = int(http_service.url.rsplit(":", 1)[1])
        assert ("127.0.0.1", port) in hosts, refused
        assert ("169.254.169.254", 80) in hosts, refused
        assert http_service.requests == 0


async def test_five_refused_connections_reach_the_founders_inbox(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    http_service: Any,
) -> None:
    program = tmp_path / "probe.py"
    program.write_text(
        "import urllib.request, sys\n"
        "for path in range(6):\n"
        "    try:\n"
        f"        urllib.request.urlopen('{http_service.url}/auth-' + str(path), timeout=5)\n"
        "    except Exception as exc:\n"
        "        print(exc, file=sys.stderr)\n"
    )
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = set_runner(team, "coder", "command", command=[sys.executable, str(program)])
        await api.run_agent(client, team.task_queue, coder, "command", RunRequest(prompt="go"))
        await run_in_phase(client, coder, "finished", "the probe to finish", 120)

        async def told() -> list[Any]:
            return [i for i in await team.store.inbox() if i.kind == "egress_refused"]

        items = await eventually(told, "the founder to be told")
        assert len(items) == 1 and coder in items[0].title
        assert len(await team.store.egress_refusals(coder)) == 6
        assert http_service.requests == 0


async def test_agents_started_one_after_another_each_get_their_own_walls_and_nothing_leaks(
    client: Client, fresh_db: str, tmp_path: Path, forge: FakeForge, valid_token: None
) -> None:
    """The worker starts each sandbox's launcher ahead of the agent it will run (node up, srt
    loaded, no plan yet). The agent that gets it sees its own walls and nothing of the one
    before (its worktree, the launcher's descriptors); once the worker stops, no launcher of
    its is left running."""
    program = tmp_path / "look.py"
    program.write_text(
        "import json, os, pathlib, sys\n"
        "other = pathlib.Path(sys.argv[1])\n"
        "fds = sorted(int(f) for f in os.listdir('/proc/self/fd'))\n"
        "report = {'home': os.environ['HOME'], 'fds': fds, 'other': other.exists()}\n"
        "pathlib.Path('look.json').write_text(json.dumps(report))\n"
    )

    def launchers() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text()
                line = (entry / "cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            parent = int(stat.rpartition(")")[2].split()[1])
            if parent == os.getpid() and sandbox.LAUNCHER.name.encode() in line:
                found.append(int(entry.name))
        return found

    home = tmp_path / "tether-home"
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        first, second = team.agent("coder"), team.agent("devops")
        for name, other in ((first, second), (second, first)):
            role = name.rpartition("-")[0]
            argv = [sys.executable, str(program), str(home / "worktrees" / other)]
            set_runner(team, role, "command", command=argv)
            await api.run_agent(client, team.task_queue, name, "command", RunRequest(prompt="go"))
            view = await run_in_phase(client, name, "finished", f"{name} to finish", 120)
            assert view.run is not None and view.run.last is not None
            assert view.run.last.exit_code == 0, view.run.last.stderr_tail
        assert len(launchers()) == 1  # the spare, waiting for the next agent
    for name in (first, second):
        report = json.loads((home / "worktrees" / name / "look.json").read_text())
        assert report["home"] == str(home / "agents" / name)
        assert report["other"] is False
        # stdin, stdout, stderr and the listing itself: no pipe of the launcher's
        assert len(report["fds"]) <= 4 and report["fds"][:3] == [0, 1, 2], report
    assert launchers() == []


def test_a_host_without_user_namespaces_refuses_in_one_line(tmp_path: Path) -> None:
    """Simulated for real: a user namespace whose limit of nested namespaces is 0, where
    bubblewrap cannot make the agent's; Tether says why and what to do, and starts nothing."""
    probe = (
        "from tether.ops import sandbox\n"
        "try:\n"
        "    sandbox.require_sandbox('coder')\n"
        "except sandbox.SandboxUnavailable as exc:\n"
        "    print(exc)\n"
        "    raise SystemExit(3)\n"
    )
    done = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            'echo 0 > /proc/sys/user/max_user_namespaces && exec "$0" -c "$1"',
            sys.executable,
            probe,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_environment(PYTHONPATH=str(ROOT)),
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("Tether will not run coder unsandboxed: this host gives no user")
    assert 'isolation = "none"' in lines[0]


async def test_the_founder_runs_a_command_by_hand_in_an_agents_sandbox(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    temporal_address: str,
) -> None:
    """`tether sandbox AGENT -- COMMAND`: the same walls, the agent's token for as long as it
    runs, the command's own exit status."""
    founder_home = keys.write(tmp_path / "tether-home")
    program = tmp_path / "by_hand.py"
    program.write_text(
        "import os, pathlib, subprocess, sys\n"
        f"key = pathlib.Path({str(founder_home / 'founder.key')!r})\n"
        "print('key:', 'hidden' if not key.exists() else 'READ')\n"
        "print('term:', os.environ.get('TERM'))\n"
        "done = subprocess.run([sys.executable, '-m', 'tether', 'task', 'claim', sys.argv[1],\n"
        "                       '--agent', os.environ['TETHER_AGENT']], capture_output=True)\n"
        "print('claim:', done.returncode, done.stderr.decode()[-300:])\n"
        "sys.exit(7)\n"
    )
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        assert team.gateway is not None
        coder = team.agent("coder")
        task_id = f"by-hand-{coder.rsplit('-', 1)[1]}"
        await api.create_task(
            client,
            team.task_queue,
            TaskSpec(id=task_id, title="By hand", checks=[ShellCheck(command="true")]),
        )
        config = tmp_path / "tether.toml"
        config.write_text(
            f'[repositories.app]\npath = "{team.repo}"\n'
            f'[[agents]]\nname = "{coder}"\nruntime = "command"\nrepositories = ["app"]\n'
            f'[agents.run]\ncommand = ["true"]\nenv = {{ PYTHONPATH = "{ROOT}" }}\n'
        )
        env = clean_environment(
            TETHER_HOME=str(founder_home),
            TETHER_CONFIG=str(config),
            TEMPORAL_ADDRESS=temporal_address,
            DATABASE_URL=fresh_db,
            TETHER_TASK_QUEUE=team.task_queue,
            TETHER_GATEWAY_URL=team.gateway.url,
            TERM="xterm-256color",
        )
        ran = await tether(env, "sandbox", coder, "--", sys.executable, str(program), task_id)
        assert ran.code == 7, (ran.out, ran.err)
        assert "key: hidden" in ran.out, ran.out
        assert "term: xterm-256color" in ran.out
        assert "claim: 0" in ran.out, ran.out
        record = await team.store.get_task(task_id)
        assert record is not None and record.task.assignee == coder
        # The token it ran with opens nothing any more.
        tokens = [
            t for t in await team.store.agent_tokens(coder) if t["created_by"] == "tether sandbox"
        ]
        assert len(tokens) == 1 and tokens[0]["revoked_at"] is not None
        empty = await tether(env, "sandbox", coder)
        assert empty.code != 0 and "tether sandbox AGENT -- COMMAND" in empty.err


async def test_the_real_claude_code_works_sandboxed_and_its_reach_for_the_key_is_refused(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    http_service: Any,
) -> None:
    """Claude Code run by Tether: its hooks reach the gateway and its task is submitted, while
    the sandbox, not a hook, refuses its Bash a `cat` of the founder's key (the failed call is
    in the session's tool-call record) and a connection elsewhere (audited)."""
    ensure_claude_code()
    founder_home = keys.write(tmp_path / "tether-home")
    key = founder_home / "founder.key"
    async with running_team(client, fresh_db, tmp_path, forge) as team:
        coder = team.agent("coder")
        task_id = f"sandboxed-{coder.rsplit('-', 1)[1]}"
        turns = [
            Turn.bash(f"cat {key}"),
            Turn.bash(f"curl -sS -m 5 {http_service.url}/"),
            Turn.bash(f"tether task submit {task_id} --agent {coder}"),
            Turn.say("Done."),
        ]
        with ModelApi(turns) as model:
            claude_runner(team, "coder", model, tmp_path)
            await run_on_a_task(client, team, coder, "claude-code", "Sandboxed", "Do the work.")
            await run_in_phase(client, coder, "finished", "Claude Code to finish", 120)
            results = [r for req in model.main_requests() for r in req.last_tool_results()]
            shown = json.dumps([req.body for req in model.requests])
        assert len(results) == 3, results
        cat, curl, submit = (json.dumps(r["content"]) for r in results)
        assert "No such file or directory" in cat and "Tether" not in cat, cat
        assert key.read_text().strip().splitlines()[1] not in shown
        assert "403" in curl or "Forbidden" in curl or "blocked" in curl.lower(), curl
        assert "DONE" in submit, submit
        await task_reaches(team, task_id, TaskState.DONE)
        view = await api.session_view(client, coder)
        assert view is not None and view.governor.reports >= 3
        port = int(http_service.url.rsplit(":", 1)[1])
        refused = await team.store.egress_refusals(coder)
        assert ("127.0.0.1", port) in {(r["host"], r["port"]) for r in refused}
        assert http_service.requests == 0

        async def recorded() -> list[dict[str, Any]]:
            calls = await team.store.tool_calls(coder)
            return [c for c in calls if c["action"] == "Bash:cat" and "founder.key" in c["error"]]

        (refused_cat,) = await eventually(recorded, "the refused cat in the tool-call record", 90)
        assert not refused_cat["ok"] and "No such file or directory" in refused_cat["error"]


async def test_a_secret_with_no_host_to_go_to_is_withheld(tmp_path: Path) -> None:
    """An agent whose only destination is the gateway gets no placeholder to send anywhere:
    the variable is not in its environment at all; and no file the launch left holds it."""
    (tmp_path / "worktree").mkdir()
    env = {"PATH": "/usr/bin:/bin", "GH_TOKEN": VALID_TOKEN}
    walls = sandbox.walls(
        agent="coder",
        runtime="command",
        worktree=tmp_path / "worktree",
        home=tmp_path / "home" / "agents" / "coder",
        tether_home=tmp_path / "home",
        gateway_url="http://127.0.0.1:9",
        repositories=[],
        network=[],
        env=env,
        secret_names=["GH_TOKEN"],
    )
    argv = ["/bin/sh", "-c", 'echo "token=[${GH_TOKEN-unset}]"']
    plan = sandbox.prepare(walls, argv, tmp_path / "worktree", env)
    launcher = await sandbox.start_launcher(env=env, stdout=asyncio.subprocess.PIPE)
    try:
        await launcher.send(plan)
        out, _ = await asyncio.wait_for(launcher.process.communicate(), 60)
    finally:
        launcher.done()
    assert out.decode().strip() == "token=[unset]"
    left = [
        p for p in tmp_path.rglob("*") if p.is_file() and VALID_TOKEN.encode() in p.read_bytes()
    ]
    assert left == []


def test_a_body_sent_in_chunks_reaches_the_model_server_whole() -> None:
    """Through the sandbox's proxy a client's request body can arrive in chunks, with no
    Content-Length (the real Codex's does). The model server the demo and the tests run reads it
    whole, and the next request on the same connection is still a request."""
    import httpx

    def chunks() -> Iterator[bytes]:
        yield b'{"model": "m", "messages": [{"role": "user", '
        yield b'"content": "chunked"}], "max_tokens": 5}'

    with ModelApi([]) as model, httpx.Client(base_url=model.url) as http:
        first = http.post("/v1/messages", content=chunks())
        second = http.post("/v1/messages", json={"messages": [{"role": "user", "content": "x"}]})
    assert first.status_code == second.status_code == 200
    assert first.request.headers.get("transfer-encoding") == "chunked"
    assert [r.body["messages"][0]["content"] for r in model.requests] == ["chunked", "x"]
