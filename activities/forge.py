"""Open pull requests from the forge: GitHub's REST API, or Gitea/Forgejo's GitHub-like /api/v1.

A 401/403 is the credential's fault and raises the typed, non-retryable CredentialRejected
error; a rate limit or an unreachable forge is a problem the brief mentions, nothing more.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx

from activities.credentials import credential_rejected, forge_headers
from tether.config import Forge
from tether.contracts import PullRequestInfo

MAX_PAGES = 5
MAX_FILES_PER_PR = 300
_CONCURRENT_FILE_REQUESTS = 8


class ForgeUnavailable(Exception):
    """The forge did not answer usefully (down, rate-limited, unexpected status)."""


class ForgeClient:
    def __init__(self, forge: Forge, token: str | None, credential: str | None) -> None:
        self.forge = forge
        self.credential = credential or "(none)"
        headers = forge_headers(forge, token) if token else {}
        self._http = httpx.AsyncClient(
            base_url=forge.api_url, headers=headers, timeout=forge.timeout_seconds
        )

    async def __aenter__(self) -> ForgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        try:
            response = await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ForgeUnavailable(
                f"{self.forge.api_url} did not answer ({type(exc).__name__})"
            ) from exc
        if response.status_code in (401, 403, 429):
            limited = response.headers.get("x-ratelimit-remaining") == "0" or (
                "retry-after" in response.headers
            )
            if limited or response.status_code == 429:
                reset = response.headers.get("x-ratelimit-reset") or response.headers.get(
                    "retry-after", "?"
                )
                raise ForgeUnavailable(f"{self.forge.api_url} is rate-limiting us (reset {reset})")
            raise credential_rejected(
                self.credential,
                f"was rejected by the forge (HTTP {response.status_code} on {path})",
            )
        if response.status_code == 404:
            raise ForgeUnavailable(f"{path} not found on {self.forge.api_url}")
        if not response.is_success:
            raise ForgeUnavailable(
                f"{self.forge.api_url}{path} answered HTTP {response.status_code}"
            )
        return response

    async def _pages(self, path: str, params: dict[str, Any]) -> list[Any]:
        items: list[Any] = []
        page = 1
        while page <= MAX_PAGES:
            response = await self._get(path, {**params, "page": page})
            batch = response.json()
            if not isinstance(batch, list):
                raise ForgeUnavailable(f"{path} did not return a list")
            items += batch
            if not batch or 'rel="next"' not in response.headers.get("link", ""):
                break
            page += 1
        return items

    async def open_pull_requests(self, repository: str, owner_repo: str) -> list[PullRequestInfo]:
        github = self.forge.kind == "github"
        params: dict[str, Any] = (
            {"state": "open", "sort": "updated", "direction": "desc", "per_page": 100}
            if github
            else {"state": "open", "sort": "recentupdate", "limit": 50}
        )
        raw = await self._pages(f"/repos/{owner_repo}/pulls", params)
        limit = asyncio.Semaphore(_CONCURRENT_FILE_REQUESTS)

        async def files(number: int) -> list[str]:
            async with limit:
                size = {"per_page": 100} if github else {"limit": 50}
                entries = await self._pages(f"/repos/{owner_repo}/pulls/{number}/files", size)
            names = [e.get("filename") for e in entries if isinstance(e, dict)]
            return [n for n in names if isinstance(n, str)][:MAX_FILES_PER_PR]

        prs = [p for p in raw if isinstance(p, dict) and isinstance(p.get("number"), int)]
        all_files = await asyncio.gather(*(files(p["number"]) for p in prs))
        return [
            PullRequestInfo(
                repository=repository,
                number=p["number"],
                title=str(p.get("title") or ""),
                branch=str((p.get("head") or {}).get("ref") or ""),
                author=str((p.get("user") or {}).get("login") or ""),
                updated_at=_when(p.get("updated_at")),
                url=str(p.get("html_url") or ""),
                files=f,
            )
            for p, f in zip(prs, all_files, strict=True)
        ]


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
