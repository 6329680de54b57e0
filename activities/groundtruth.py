"""Ground truth at session start: what git, the forge and the task table say (not the agents)."""

from __future__ import annotations

import os
from datetime import datetime

from activities.checks import ProcessOutcome, git
from activities.credentials import SecretUnavailable, read_secret
from activities.forge import ForgeClient, ForgeUnavailable
from tether.config import Repository, TetherConfig
from tether.contracts import CommitInfo, PullRequestInfo

MAX_COMMITS_PER_REPOSITORY = 30


def _lines(out: ProcessOutcome) -> list[str]:
    return [line for line in out.stdout.searchable().splitlines() if line.strip()]


async def branch_tips(repo: Repository) -> dict[str, str]:
    out = await git(
        repo.path, "for-each-ref", "--format=%(refname:short)%09%(objectname)", "refs/heads"
    )
    if out.exit_code != 0:
        raise OSError(f"git for-each-ref failed in {repo.path}: {out.excerpt()[:200]}")
    return dict(line.split("\t", 1) for line in _lines(out))


async def checked_out_branch(repo: Repository) -> str | None:
    out = await git(repo.path, "symbolic-ref", "--short", "-q", "HEAD")
    lines = _lines(out)
    return lines[0].strip() if out.exit_code == 0 and lines else None


async def recent_commits(name: str, repo: Repository, days: int) -> list[CommitInfo]:
    out = await git(
        repo.path,
        "log",
        "--branches",
        "--source",
        f"--since={days}.days",
        f"-n{MAX_COMMITS_PER_REPOSITORY}",
        "--format=%H%x09%S%x09%an%x09%cI%x09%s",
    )
    if out.exit_code != 0:
        raise OSError(f"git log failed in {repo.path}")
    commits = []
    for line in _lines(out):
        sha, source, author, when, subject = [*line.split("\t", 4), "", "", "", ""][:5]
        commits.append(
            CommitInfo(
                repository=name,
                sha=sha,
                branch=source.removeprefix("refs/heads/"),
                author=author,
                at=datetime.fromisoformat(when),
                subject=subject,
            )
        )
    return commits


async def read_repositories(
    config: TetherConfig,
) -> tuple[list[CommitInfo], dict[str, dict[str, str]], dict[str, str], list[str]]:
    """Recent commits, branch tips and checked-out branches of every configured repository."""
    commits: list[CommitInfo] = []
    tips: dict[str, dict[str, str]] = {}
    heads: dict[str, str] = {}
    problems: list[str] = []
    for name, repo in config.repositories.items():
        if not os.path.isdir(repo.path):
            problems.append(f"repository {name}: {repo.path} does not exist on the worker")
            continue
        try:
            tips[name] = await branch_tips(repo)
            head = await checked_out_branch(repo)
            if head:
                heads[name] = head
            commits += await recent_commits(name, repo, config.sessions.recent_commit_days)
        except OSError as exc:
            problems.append(f"repository {name}: {exc}")
    commits.sort(key=lambda c: c.at, reverse=True)
    return commits, tips, heads, problems


async def read_pull_requests(config: TetherConfig) -> tuple[list[PullRequestInfo], list[str]]:
    """Open pull requests of every repository with a `forge_repo`.

    Raises the typed CredentialRejected error on a 401/403; other failures become problems.
    """
    forge = config.forge
    targets = {n: r.forge_repo for n, r in config.repositories.items() if r.forge_repo}
    if forge is None or not targets:
        return [], []
    token = None
    if forge.credential:
        try:
            token = read_secret(config.credentials[forge.credential])
        except SecretUnavailable as exc:
            return [], [f"forge: credential {forge.credential} {exc}"]
    logins = {a.login: a.name for a in config.agents}
    prs: list[PullRequestInfo] = []
    problems: list[str] = []
    async with ForgeClient(forge, token, forge.credential) as client:
        for name, owner_repo in targets.items():
            assert owner_repo is not None
            try:
                found = await client.open_pull_requests(name, owner_repo)
            except ForgeUnavailable as exc:
                problems.append(f"pull requests of {owner_repo}: {exc}")
                continue
            prs += [p.model_copy(update={"agent": logins.get(p.author)}) for p in found]
    return prs, problems
