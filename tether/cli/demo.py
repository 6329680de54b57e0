"""`tether demo`: the seven production incidents, replayed by a scripted team against the real
stack, each caught (or not) by the guardrail built for it.

The demo brings its own world under `$TETHER_HOME/demo/<tag>/`: a git repository, a small HTTP
"api" service on 127.0.0.1 (its /checkout answers 500; /version serves what the last rollout
wrote), an expired scanner token, a demo tether.toml, and a worker of its own on the task queue
`tether-demo-<tag>`, connected to the stack's Temporal and PostgreSQL. Every name carries the
tag, so the demo can run again and never touches the founder's own agents, tasks or services.

The simulated agents speak to Tether exactly as the Claude Code hooks do: `tether.client` updates
and queries, and tool calls fingerprinted by `tether.hook.fingerprint` from Claude Code's own
payload shape. Nothing is mocked: the guardrail that acts is the production code path.

The founder's key (`$TETHER_HOME/founder.key`) signs the demo's approvals; the demo makes one,
as `tether keygen` would, when there is none, so the inbox's commands work as printed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from temporalio.client import Client

from tether import client as api
from tether import constants
from tether.config import TetherConfig
from tether.contracts import (
    DEPLOY_FINAL,
    Artifact,
    DeployRequest,
    DeployState,
    DeployView,
    HttpCheck,
    NoteInput,
    Report,
    SessionInput,
    ShellCheck,
    TaskSpec,
    TaskState,
    ToolCall,
)
from tether.errors import TetherError
from tether.hook.fingerprint import claude_code_tool_call
from tether.ops.loopback import LoopbackServer, QuietHandler

ROLES = ("coder", "devops", "security", "marketing", "analyst")
# The loop incident's 23 retries: the same `kubectl set`, written five ways ({n}: the attempt).
KUBECTL_VARIANTS = [
    "kubectl set image deploy/web-{n} web=registry/web:1.{n} -n prod",
    "kubectl --namespace prod set image deploy/web-{n} web=registry/web:1.{n}",
    "KUBECONFIG=/tmp/kc-{n} kubectl set image deploy/web web=registry/web:1.{n} -n prod",
    "cd infra && kubectl set image deployment/web-{n} web=web:1.{n} --namespace=prod",
    "kubectl set image deploy/web-{n} web=registry/web:1.{n} -n prod | tee /tmp/out-{n}",
]
# How long the demo's production waits for a commit to run healthy in staging (3 s).
SOAK_MINUTES = 0.05


@dataclass
class Incident:
    number: int
    title: str
    guardrail: str
    caught: bool = False
    what: str = ""
    seconds: float = 0.0
    # Where to look in the Web UI: workflow ids.
    workflows: list[str] = field(default_factory=list)


@dataclass
class DemoResult:
    tag: str
    folder: Path
    incidents: list[Incident]
    web_ui: str = ""

    @property
    def seven(self) -> list[Incident]:
        return [i for i in self.incidents if i.number <= len(INCIDENTS)]

    @property
    def caught(self) -> int:
        return sum(1 for i in self.seven if i.caught)

    @property
    def ok(self) -> bool:
        return len(self.incidents) == len(INCIDENTS) + len(ALSO) and all(
            i.caught for i in self.incidents
        )


# --- the demo's world ---------------------------------------------------------------------------


class ApiService:
    """The team's "api" on 127.0.0.1: /checkout is broken (500), /version is what runs."""

    def __init__(self, version_file: Path) -> None:
        self.version_file = version_file

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.path == "/version":
                    try:
                        body = version_file.read_text().strip()
                        status = 200
                    except OSError:
                        body, status = "nothing deployed", 503
                elif self.path == "/checkout":
                    body, status = '{"error": "NullPointerException in CartTotals"}', 500
                else:
                    body, status = "not found", 404
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._http = LoopbackServer(Handler)
        self.url = self._http.url
        self.stop = self._http.stop


def _git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Tether demo",
        "GIT_AUTHOR_EMAIL": "demo@tether.invalid",
        "GIT_COMMITTER_NAME": "Tether demo",
        "GIT_COMMITTER_EMAIL": "demo@tether.invalid",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise TetherError(f"demo: git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _commit(repo: Path, name: str, content: str, message: str) -> str:
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    (repo / name).write_text(content)
    _git(repo, "add", name)
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _expired_jwt(days_ago: int = 3) -> str:
    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    exp = int((datetime.now(UTC) - timedelta(days=days_ago)).timestamp())
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': 'scanner', 'exp': exp})}.sig"


@dataclass
class World:
    tag: str
    folder: Path
    repo: Path
    names: dict[str, str]
    service: str
    api: ApiService
    config: TetherConfig
    key_path: Path
    task_queue: str

    def agent(self, role: str) -> str:
        return self.names[role]

    def task(self, name: str) -> str:
        return f"{name}-{self.tag}"


def founder_key(home: Path) -> tuple[Path, str, bool]:
    """The founder's key pair under `home`: (private key path, public key, made now)."""
    from tether.trust.signing import PRIVATE_KEY_FILE, generate, load_private, public_key_text

    path = home / PRIVATE_KEY_FILE
    if path.exists():
        return path, public_key_text(load_private(path).public_key()), False
    path, public = generate(home)
    return path, public, True


def build_world(home: Path, tag: str | None = None) -> tuple[World, list[str]]:
    """Make the demo's folder, repository, service and configuration. Returns notes to print."""
    tag = tag or uuid.uuid4().hex[:4]
    folder = home / "demo" / tag
    folder.mkdir(parents=True, exist_ok=False)
    notes = []
    key_path, public, made = founder_key(home)
    if made:
        notes.append(
            f"made the founder's key {key_path} (as `tether keygen` does); add its public key "
            f'to your tether.toml for your own agents: [founder] public_key = "{public}"'
        )
    repo = folder / "app"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _commit(repo, "VERSION", "v1\n", "api v1")
    _git(repo, "branch", "old-feature")
    _commit(repo, "VERSION", "v2\n", "api v2: new checkout totals")
    # The infra folder one of the loop incident's retries cds into.
    _commit(repo, "infra/web.yaml", "kind: Deployment\n", "infra: the web deployment")
    _git(repo, "checkout", "-q", "old-feature")
    _commit(repo, "FEATURE", "gift cards\n", "gift cards (branched from v1)")
    _git(repo, "checkout", "-q", "main")
    secrets = folder / "secrets"
    secrets.mkdir(mode=0o700)
    token = secrets / "scanner.jwt"
    token.write_text(_expired_jwt() + "\n")
    token.chmod(0o600)
    version_file = folder / "deployed-version"
    service_api = ApiService(version_file)
    names = {role: f"{role}-{tag}" for role in ROLES}
    service = f"api-{tag}"
    data: dict[str, Any] = {
        "repositories": {"app": {"path": str(repo), "default_branch": "main"}},
        "credentials": {"scanner": {"kind": "jwt", "file": str(token)}},
        "founder": {"public_key": public},
        "agents": [
            {
                "name": names["coder"],
                "repositories": ["app"],
                "branch": "main",
                "thresholds": {"context_window": 200_000},
            },
            {"name": names["devops"], "role": "devops", "repositories": ["app"]},
            {
                "name": names["security"],
                "role": "security",
                "credentials": ["scanner"],
                "repositories": ["app"],
            },
            {"name": names["marketing"], "role": "marketing"},
            # Too few completed tasks for an average: the ceiling is the cost governor's basis.
            {"name": names["analyst"], "role": "research", "thresholds": {"cost_ceiling_usd": 5.0}},
        ],
        "services": {
            service: {
                "repository": "app",
                "rollout": f"git show {{commit}}:VERSION > {version_file}",
                "health_checks": [{"kind": "http", "url": f"{service_api.url}/version"}],
                "cooldown_minutes": 30,
                # Production takes a commit once it ran healthy in staging this long.
                "production": {
                    "soak_minutes": SOAK_MINUTES,
                    "rollout": f"git show {{commit}}:VERSION > {folder / 'production-version'}",
                },
            }
        },
    }
    config = TetherConfig.model_validate(data)
    (folder / "tether.toml").write_text(_toml(data))
    world = World(
        tag=tag,
        folder=folder,
        repo=repo,
        names=names,
        service=service,
        api=service_api,
        config=config,
        key_path=key_path,
        task_queue=f"tether-demo-{tag}",
    )
    return world, notes


def _toml(data: dict[str, Any]) -> str:
    """The demo's configuration as TOML, for the founder to read (the worker has the object)."""

    def value(v: Any) -> str:
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        raise TypeError(type(v))

    lines = ["# The demo team's configuration (written by `tether demo`; read-only)."]
    for name, repo in data["repositories"].items():
        lines += ["", f"[repositories.{name}]"] + [f"{k} = {value(v)}" for k, v in repo.items()]
    for name, cred in data["credentials"].items():
        lines += ["", f"[credentials.{name}]"] + [f"{k} = {value(v)}" for k, v in cred.items()]
    lines += ["", "[founder]", f"public_key = {value(data['founder']['public_key'])}"]
    for agent in data["agents"]:
        lines += ["", "[[agents]]"] + [f"{k} = {value(v)}" for k, v in agent.items()]
    for name, svc in data["services"].items():
        lines += ["", f'[services."{name}"]'] + [f"{k} = {value(v)}" for k, v in svc.items()]
    return "\n".join(lines) + "\n"


# --- the incidents ------------------------------------------------------------------------------


def _bash(command: str, error: str | None, n: int) -> ToolCall:
    """A Bash call as Claude Code reports it, fingerprinted by Tether's own code."""
    payload: dict[str, Any] = {
        "tool_name": "Bash",
        "tool_input": {"command": command},
        "tool_use_id": f"toolu_demo_{n}",
    }
    if error is None:
        payload["tool_response"] = {"stdout": "ok", "stderr": "", "interrupted": False}
        event = "PostToolUse"
    else:
        payload["error"] = error
        event = "PostToolUseFailure"
    call = claude_code_tool_call(event, payload)
    assert call is not None
    return ToolCall.model_validate(call)


def _tool(name: str, tool_input: dict[str, Any], n: int) -> ToolCall:
    payload = {"tool_name": name, "tool_input": tool_input, "tool_response": "ok"}
    payload["tool_use_id"] = f"toolu_demo_{n}"
    call = claude_code_tool_call("PostToolUse", payload)
    assert call is not None
    return ToolCall.model_validate(call)


class Demo:
    def __init__(self, client: Client, world: World) -> None:
        self.client = client
        self.w = world
        # The founder's signed staging tags the demo made, in order.
        self.tags: list[str] = []

    async def session(self, role: str, n: int, **kw: Any) -> Any:
        return await api.start_session(
            self.client,
            self.w.task_queue,
            SessionInput(
                agent=self.w.agent(role), external_id=f"demo-{self.w.tag}-{role}-{n}", **kw
            ),
        )

    async def report(self, role: str, n: int, **kw: Any) -> Any:
        return await api.report(
            self.client,
            self.w.agent(role),
            Report(external_id=self._runtime_id(role, n), **kw),
        )

    def _runtime_id(self, role: str, n: int) -> str:
        """The simulated Claude Code session id (a new one for each session of the role)."""
        return f"demo-{self.w.tag}-{role}-{n}"

    async def ingress_task(self, agent: str) -> str:
        """The loop incident's task, claimed by `agent`."""
        task = await self.create(
            "ingress",
            "Roll the new ingress config out to prod",
            [ShellCheck(name="ingress", command="true")],
        )
        await api.claim_task(self.client, task, agent)
        return task

    async def research_task(self, agent: str) -> str:
        """The runaway-cost incident's task, claimed by `agent`."""
        task = await self.create(
            "research",
            "Summarise the three main competitors' pricing",
            [ShellCheck(name="summary", command="true")],
            kind="research",
        )
        await api.claim_task(self.client, task, agent)
        return task

    async def create(self, name: str, title: str, checks: list[Any], **kw: Any) -> str:
        spec = TaskSpec(id=self.w.task(name), title=title, checks=checks, **kw)
        await api.create_task(self.client, self.w.task_queue, spec)
        return spec.id

    # 1. Context: the agent that forgets at 95%.
    async def memory(self, inc: Incident) -> None:
        coder = self.w.agent("coder")
        task = await self.create(
            "checkout",
            "The checkout endpoint answers 200",
            [HttpCheck(name="checkout", url=f"{self.w.api.url}/checkout")],
            kind="bugfix",
        )
        await self.session("coder", 1)
        await api.claim_task(self.client, task, coder)
        decision = "Totals are computed in cents, never floats"
        await api.note_session(self.client, coder, NoteInput(kind="decision", text=decision))
        fired: list[str] = []
        started = time.monotonic()
        for i, pct in enumerate((35, 72, 88, 96)):
            call = _tool("Read", {"file_path": f"src/cart/totals_{i}.py"}, i)
            answer = await self.report(
                "coder", 1, tool_call=call, context_tokens=int(200_000 * pct / 100), cost_usd=0.35
            )
            fired += [f"{d.kind} at {pct}%" for d in answer.directives]
        inc.seconds = time.monotonic() - started
        # The handoff ends the session just after it answers the report that crossed 95%.
        for _ in range(300):
            view = await api.session_view(self.client, coder)
            if view is None or view.end_reason:
                break
            await asyncio.sleep(0.1)
        after = await self.session("coder", 2)
        # The new session starts working with a fresh context.
        read = _tool("Read", {"file_path": "src/cart/totals.py"}, 10)
        await self.report("coder", 2, tool_call=read, context_tokens=18_000, cost_usd=0.05)
        brief = after.brief.text if after.brief else ""
        inherited = decision in brief and brief.startswith("Handoff from your previous session")
        ended = view is not None and (view.end_reason or "").startswith("handoff")
        inc.caught = fired == ["compact at 72%", "trim at 88%", "handoff at 96%"] and (
            ended and inherited and after.task_id == task
        )
        inc.what = (
            f"{', '.join(fired) or 'no directive'}; the session ended with its brief archived, "
            f"and the next one started with it (decision kept: {'yes' if inherited else 'NO'}, "
            f"task {after.task_id or 'lost'})"
        )
        inc.workflows = [constants.session_workflow_id(coder)]

    # 2. Done means done: the task marked done while the endpoint returns 500.
    async def done_means_done(self, inc: Incident) -> None:
        task = self.w.task("checkout")
        started = time.monotonic()
        result = await api.submit_task(
            self.client, task, self.w.agent("coder"), "fixed the totals, all done"
        )
        inc.seconds = time.monotonic() - started
        failed = [e for e in result.evidence if not e.passed]
        inc.caught = not result.done and result.state == TaskState.CLAIMED and bool(failed)
        why = failed[0].summary if failed else "every check passed"
        inc.what = f"the agent said done; Tether ran the check itself: {why}; task stays claimed"
        inc.workflows = [constants.task_workflow_id(task)]

    # 3. Duplicate work: two agents reaching for the same endpoint.
    async def duplicate(self, inc: Incident) -> None:
        task = self.w.task("checkout")
        devops = self.w.agent("devops")
        view = await self.session("devops", 1)
        in_flight = [t.id for t in (view.brief.others_in_flight if view.brief else [])]
        offered = view.brief.offered.id if view.brief and view.brief.offered else None
        started = time.monotonic()
        try:
            await api.claim_task(self.client, task, devops)
            refusal = ""
        except TetherError as exc:
            refusal = str(exc)
        inc.seconds = time.monotonic() - started
        inc.caught = bool(refusal) and task in in_flight and offered != task
        inc.what = (
            f"{devops}'s brief listed {task} as in flight ({self.w.agent('coder')}), never "
            f"offered it; its claim was refused: {refusal or 'NOT REFUSED'}"
        )
        inc.workflows = [constants.task_workflow_id(task), constants.session_workflow_id(devops)]

    # 4. The security scan on an expired token.
    async def expired_token(self, inc: Incident) -> None:
        security = self.w.agent("security")
        started = time.monotonic()
        view = await self.session("security", 1)
        inc.seconds = time.monotonic() - started
        gate = await api.session_gate(self.client, security)
        inc.caught = (
            view.state == "blocked"
            and view.blocker is not None
            and gate is not None
            and bool(gate.deny)
        )
        blocker = view.blocker.describe() if view.blocker else "no blocker"
        inc.what = (
            f"blocked at session start before any scan ran ({blocker}); every tool call is "
            "denied and the founder's inbox has the fix"
        )
        inc.workflows = [constants.session_workflow_id(security)]

    # 5. Pseudo-work: four strategy documents and no post.
    async def pseudo_work(self, inc: Incident) -> None:
        marketing = self.w.agent("marketing")
        post = Artifact(kind="url", url=f"{self.w.api.url}/blog/launch-post")
        await self.session("marketing", 1, artifact=post)
        for n in range(1, 5):
            call = _tool("Write", {"file_path": f"marketing/strategy-v{n}.md", "content": "…"}, n)
            await self.report("marketing", 1, tool_call=call)
        started = time.monotonic()
        view = await api.end_session(self.client, marketing, "launch strategy complete", "agent")
        inc.seconds = time.monotonic() - started
        summary = view.artifact_result.summary if view.artifact_result else "not checked"
        inc.caught = view.pseudo_work
        inc.what = f"4 documents written, no post: flagged as pseudo-work ({summary})"
        inc.workflows = [constants.session_workflow_id(marketing)]

    # 6. The loop: 23 kubectl retries with slight variations.
    async def loop(self, inc: Incident) -> None:
        devops = self.w.agent("devops")
        task = await self.ingress_task(devops)
        forbidden = (
            'Error from server (Forbidden): deployments.apps "web-{n}" is forbidden: User '
            '"system:serviceaccount:ci:deployer-{n}" cannot patch resource "deployments" in '
            'API group "apps" in the namespace "prod"'
        )
        stopped_at = None
        denied_after = 0
        started = time.monotonic()
        for n in range(1, 24):
            if n > 1:  # a Read that succeeds between retries: not progress on the failing action
                await self.report(
                    "devops", 1, tool_call=_tool("Read", {"file_path": "k8s.yaml"}, n)
                )
            command = KUBECTL_VARIANTS[n % len(KUBECTL_VARIANTS)].format(n=n)
            call = _bash(command, f"Exit code 1\n{forbidden.format(n=n)}", n)
            if stopped_at is not None:  # what PreToolUse would answer before the call runs
                gate = await api.session_gate(self.client, devops)
                denied_after += 1 if gate is not None and gate.deny else 0
                continue
            answer = await self.report("devops", 1, tool_call=call)
            if answer.deny and stopped_at is None:
                stopped_at = n
                inc.seconds = time.monotonic() - started
        view = await api.get_view(self.client, task)
        inc.caught = (
            stopped_at is not None
            and stopped_at <= self.w.config.thresholds.loop_limit
            and view.state == TaskState.BLOCKED
            and denied_after == 23 - stopped_at
        )
        inc.what = (
            f"stopped at attempt {stopped_at} of 23 (the same `kubectl set` failing the same "
            f"way); the other {denied_after} were denied before they ran; task {task} is "
            f"{view.state}, lifted only by a founder-signed `tether task unblock {task}`"
        )
        inc.workflows = [constants.task_workflow_id(task), constants.session_workflow_id(devops)]

    # 7. The older-branch deploy overwriting a newer one.
    async def stale_deploy(self, inc: Incident) -> None:
        devops = self.w.agent("devops")
        newer = await self.deploy("main", devops)
        running = self.w.api.url + "/version"
        started = time.monotonic()
        older = await self.deploy("old-feature", devops)
        inc.seconds = time.monotonic() - started
        import httpx

        async with httpx.AsyncClient() as http:
            serving = (await http.get(running)).text.strip()
        inc.caught = (
            newer.state == DeployState.DONE
            and older.state == DeployState.REFUSED
            and "does not descend" in (older.reason or "")
            and serving == "v2"
        )
        shown = f" (the founder's signed tag {self.tags[0]})" if self.tags else ""
        # Then production: the same commit, once it has run healthy in staging long enough,
        # with the founder's second tag.
        asked = time.monotonic()
        promoted = await self.deploy("main", devops, environment="production")
        waited = time.monotonic() - asked
        live = (self.w.folder / "production-version").read_text().strip()
        inc.caught = inc.caught and promoted.state == DeployState.DONE and live == "v2"
        inc.what = (
            f"main (v2) deployed{shown}; old-feature, approved by the founder too, was "
            f"{older.state}: {older.reason}; the service still serves {serving}. Production "
            f"took v2 after {SOAK_MINUTES * 60:g} s healthy in staging (asked, it waited "
            f"{waited:.0f} s) with the founder's {self.tags[-1]}"
        )
        inc.workflows = [newer.deployment_id, older.deployment_id, promoted.deployment_id]

    # And the money: a task whose cost runs away is paused by the cost governor.
    async def runaway_cost(self, inc: Incident) -> None:
        analyst = self.w.agent("analyst")
        await self.session("analyst", 1)
        task = await self.research_task(analyst)
        for _ in range(100):  # the session reads the task's cost baseline when it takes it
            view = await api.session_view(self.client, analyst)
            if view is not None and view.governor.baseline is not None:
                break
            await asyncio.sleep(0.1)
        spent, warned, paused_at = 0.0, False, None
        started = time.monotonic()
        for n in range(1, 9):
            call = _tool("WebFetch", {"url": f"https://example.invalid/pricing/{n}"}, n)
            answer = await self.report("analyst", 1, tool_call=call, cost_usd=1.5)
            spent += 1.5
            kinds = {d.kind for d in answer.directives}
            warned = warned or "cost_warning" in kinds
            if "cost_pause" in kinds:
                paused_at = spent
                inc.seconds = time.monotonic() - started
                break
        view_task = await api.get_view(self.client, task)
        inc.caught = warned and paused_at == 6.0 and view_task.state == TaskState.PAUSED
        inc.what = (
            f"warned above $3.00, paused at ${paused_at or spent:.2f} (ceiling $5.00); task {task}"
            f" is {view_task.state} until a founder-signed `tether resume {task}`"
        )
        inc.workflows = [constants.task_workflow_id(task), constants.session_workflow_id(analyst)]

    async def deploy(self, ref: str, agent: str, environment: str = "staging") -> DeployView:
        from tether.trust.signing import load_private, sign

        request = DeployRequest(
            service=self.w.service,
            ref=ref,
            agent=agent,
            reason="demo",
            environment=environment,
        )
        view = await api.request_deploy(self.client, self.w.task_queue, request)
        view = await self._until(view.deployment_id, lambda v: v.commit is not None)
        # As `tether approve` does: the founder's signed tag on the commit, then the approval.
        key = load_private(self.w.key_path)
        repo = self.w.config.repositories[self.w.config.services[self.w.service].repository]
        tag, _ = await asyncio.to_thread(
            api.tag_approval, view, Path(repo.path), repo.remote, key, "founder"
        )
        self.tags.append(tag)
        approval = api.prepare_approval(
            view, decision="approve", by="founder", reason="demo", ttl=None, tag=tag
        )
        verdict = await api.submit_approval(self.client, view.deployment_id, sign(approval, key))
        if not verdict.accepted:
            raise TetherError(f"the demo's approval was refused: {verdict.reason}")
        await self._until(view.deployment_id, lambda v: v.state in DEPLOY_FINAL)
        # The workflow's last steps (audit, release, the founder's notice) finish before the
        # demo's worker may stop.
        final: DeployView = await self.client.get_workflow_handle(
            view.deployment_id, result_type=DeployView
        ).result()
        return final

    async def _until(self, deployment_id: str, done: Callable[[DeployView], bool]) -> DeployView:
        for _ in range(600):
            view = await api.deploy_view(self.client, deployment_id)
            if done(view):
                return view
            await asyncio.sleep(0.1)
        raise TetherError(f"deployment {deployment_id} did not progress within 60 s")


INCIDENTS: list[tuple[str, str, str]] = [
    ("The agent that forgets at 95% context", "memory governor", "memory"),
    ("The task marked done while the endpoint returns 500", "done means done", "done_means_done"),
    ("Two agents reaching for the same endpoint", "one assignee, brief", "duplicate"),
    ("The security scan failing on an expired token", "credential gate", "expired_token"),
    ("Four strategy documents and no post", "pseudo-work check", "pseudo_work"),
    ("23 kubectl retries with slight variations", "anti-loop governor", "loop"),
    ("The older branch deployed over a newer one", "stale-base guard", "stale_deploy"),
]
# Shown after the seven: the guardrail on what the loops cost.
ALSO: list[tuple[str, str, str]] = [
    ("A task whose cost runs away", "cost governor", "runaway_cost"),
]


async def run_incidents(
    client: Client,
    world: World,
    on_result: Callable[[Incident], Awaitable[None] | None],
    demo: Demo | None = None,
) -> list[Incident]:
    demo = demo or Demo(client, world)
    results = []
    for number, (title, guardrail, method) in enumerate(INCIDENTS + ALSO, start=1):
        inc = Incident(number, title, guardrail)
        try:
            await getattr(demo, method)(inc)
        except Exception as exc:  # a guardrail that crashed did not act: say so, go on
            inc.caught = False
            inc.what = f"the incident could not be replayed: {type(exc).__name__}: {exc}"
        results.append(inc)
        maybe = on_result(inc)
        if maybe is not None:
            await maybe
    return results


def render_incident(inc: Incident, colour: bool = False) -> str:
    mark = "CAUGHT" if inc.caught else "MISSED"
    if colour:
        mark = f"\033[{'32' if inc.caught else '31'}m{mark}\033[0m"
    number = f"{inc.number}." if inc.number <= len(INCIDENTS) else "+"
    head = f"{number} {inc.title} "
    text = (
        f"{head}{'.' * max(3, 62 - len(head))} {mark} in {inc.seconds:.2f} s\n"
        f"   {inc.guardrail}: {inc.what}"
    )
    if inc.workflows:
        text += f"\n   in the Web UI: {', '.join(inc.workflows)}"
    return text


def web_ui_links(web_ui: str, namespace: str, world: World) -> list[str]:
    base = f"{web_ui.rstrip('/')}/namespaces/{namespace}/workflows?query="
    team = " OR ".join(f'TetherAgent="{name}"' for name in world.names.values())
    held = 'TetherState IN ("blocked", "paused")'
    deploys = f'TetherService="{world.service}"'
    return [
        f"the demo team:  {base}{quote(team)}",
        f"held work:      {base}{quote(held)}",
        f"deploys of api: {base}{quote(deploys)}",
    ]
