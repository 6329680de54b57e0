"""The artifact test: did the session produce what it declared? Run by the orchestrator, never the
agent, against the world as it is (git, the file system, the URL, the deployments table).

A commit counts only if it is new since the session started — compared with the branch tips
recorded at the start, not with commit dates, which an agent can set to anything — and its diff
is not empty (touching the declared path, when there is one).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import httpx

from activities.checks import git
from tether.config import TetherConfig
from tether.contracts import Artifact, ArtifactInput, ArtifactResult
from tether.names import worktree_branch
from tether.store import Store

MAX_LISTED = 20
URL_TIMEOUT_SECONDS = 15.0


def _result(
    passed: bool, summary: str, artifact: Artifact | None, **kw: list[str]
) -> ArtifactResult:
    return ArtifactResult(
        passed=passed, summary=summary, artifact=artifact, checked_at=datetime.now(UTC), **kw
    )


async def resolve_artifact(inp: ArtifactInput, store: Store) -> Artifact | None:
    """The artifact of the session's task, fixed by the founder when the task was created; else
    the one the session declared; else None (a commit in the agent's repositories).

    A task's artifact wins over a declaration, so that an agent cannot swap its deliverable for
    an easier one."""
    if inp.task_id:
        record = await store.get_task(inp.task_id)
        tasks = [record.task] if record else []
    else:
        # Tasks the agent holds now, or finished during this session.
        tasks = await store.held_or_done_since(inp.agent, inp.started_at)
    fixed = next((t.spec.artifact for t in tasks if t.spec.artifact), None)
    return fixed or inp.artifact


async def check_commit(
    inp: ArtifactInput, config: TetherConfig, repository: str, branch: str | None, path: str | None
) -> ArtifactResult:
    artifact = Artifact(kind="commit", repository=repository, branch=branch, path=path)
    repo = config.repositories.get(repository)
    if repo is None:
        return _result(False, f"repository {repository!r} is not configured", artifact)
    if not os.path.isdir(repo.path):
        return _result(False, f"repository {repository}: {repo.path} does not exist", artifact)
    named = branch or _agent_branch(config, inp.agent)
    if named is None:
        # An agent Tether runs commits in its worktree, on its own branch; one that runs
        # elsewhere, on the branch checked out at its session's start.
        own = worktree_branch(inp.agent)
        there = await git(repo.path, "rev-parse", "--verify", "--quiet", f"refs/heads/{own}")
        fallback = inp.checked_out.get(repository) or repo.default_branch
        if there.exit_code == 0 and fallback != own:
            mine = await check_commit(inp, config, repository, own, path)
            if mine.passed:
                return mine
        named = fallback
    branch = named
    artifact = artifact.model_copy(update={"branch": branch})
    exists = await git(repo.path, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
    if exists.exit_code != 0:
        return _result(False, f"no branch {branch!r} in {repository}", artifact)
    start = sorted(set(inp.branch_tips.get(repository, {}).values()))
    # Commits on the branch that no branch held when the session started.
    exclude = ["--not", *start] if start else [f"--since={inp.started_at.isoformat()}"]
    revs = await git(repo.path, "rev-list", f"refs/heads/{branch}", *exclude)
    commits = revs.stdout.searchable().split()
    if not commits:
        return _result(
            False, f"no commit on {branch!r} in {repository} since the session started", artifact
        )
    log = await git(
        repo.path,
        "log",
        "--no-merges",
        "--format=",
        "--name-only",
        f"refs/heads/{branch}",
        *exclude,
    )
    files = sorted({f for f in log.stdout.searchable().splitlines() if f.strip()})
    if path:
        prefix = path.rstrip("/")
        files = [f for f in files if f == prefix or f.startswith(prefix + "/")]
    if not files:
        where = f" touching {path!r}" if path else ""
        return _result(
            False,
            f"{len(commits)} commit(s) on {branch!r} in {repository} since the session started, "
            f"but none with changes{where}",
            artifact,
            commits=commits[:MAX_LISTED],
        )
    shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return _result(
        True,
        f"{len(commits)} new commit(s) on {branch!r} in {repository} changing {shown}",
        artifact,
        commits=commits[:MAX_LISTED],
        files=files[:MAX_LISTED],
    )


def _agent_branch(config: TetherConfig, agent: str) -> str | None:
    found = config.agent(agent)
    return found.branch if found else None


def check_file(inp: ArtifactInput, config: TetherConfig, artifact: Artifact) -> ArtifactResult:
    assert artifact.path is not None
    path = Path(artifact.path).expanduser()
    if not path.is_absolute():
        repo = config.repositories.get(artifact.repository or "")
        if repo is None:
            return _result(
                False,
                f"{artifact.path} is relative; name its repository or give an absolute path",
                artifact,
            )
        path = Path(repo.path) / path
    try:
        stat = path.stat()
    except OSError:
        return _result(False, f"{path} does not exist", artifact)
    if stat.st_size == 0:
        return _result(False, f"{path} is empty", artifact)
    modified = datetime.fromtimestamp(stat.st_mtime, UTC)
    if modified < inp.started_at:
        return _result(
            False,
            f"{path} was last changed {modified:%Y-%m-%d %H:%M} UTC, before the session",
            artifact,
        )
    return _result(
        True,
        f"{path} written at {modified:%H:%M:%S} UTC ({stat.st_size} bytes)",
        artifact,
        files=[str(path)],
    )


async def check_url(artifact: Artifact) -> ArtifactResult:
    assert artifact.url is not None
    try:
        async with httpx.AsyncClient(timeout=URL_TIMEOUT_SECONDS, follow_redirects=True) as c:
            response = await c.get(artifact.url)
    except httpx.HTTPError as exc:
        return _result(False, f"GET {artifact.url} failed: {type(exc).__name__}", artifact)
    ok = response.is_success
    return _result(ok, f"GET {artifact.url} answered HTTP {response.status_code}", artifact)


async def check_deploy(inp: ArtifactInput, store: Store, artifact: Artifact) -> ArtifactResult:
    assert artifact.service is not None
    found = await store.deployment_since(artifact.service, inp.started_at)
    if found is None:
        return _result(
            False,
            f"no finished deployment of {artifact.service} since the session started",
            artifact,
        )
    return _result(
        True,
        f"{artifact.service} deployed {str(found['commit'])[:12]} at "
        f"{found['finished_at']:%H:%M:%S} UTC",
        artifact,
        commits=[str(found["commit"])],
    )


async def check_artifact(inp: ArtifactInput, config: TetherConfig, store: Store) -> ArtifactResult:
    artifact = await resolve_artifact(inp, store)
    if artifact is None:
        agent = config.agent(inp.agent)
        repos = agent.repositories if agent else []
        if not repos:
            return _result(
                False,
                "no artifact was declared and the agent has no repositories to look for commits in",
                None,
            )
        results = [await check_commit(inp, config, r, None, None) for r in repos]
        passed = [r for r in results if r.passed]
        if passed:
            return passed[0]
        return _result(False, "; ".join(r.summary for r in results), results[0].artifact)
    if artifact.kind == "commit":
        assert artifact.repository is not None
        return await check_commit(inp, config, artifact.repository, artifact.branch, artifact.path)
    if artifact.kind == "file":
        return check_file(inp, config, artifact)
    if artifact.kind == "url":
        return await check_url(artifact)
    return await check_deploy(inp, store, artifact)
