"""Credential probes against a forge on 127.0.0.1, the expiry reminders and their Schedule."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

import worker as tether_worker
from activities.credentials import probe
from activities.forge import ForgeClient
from activities.sessions import SessionActivities
from tests.support import keys
from tests.support.helpers import FakeForge, HttpService, eventually
from tether import constants
from tether.config import CredentialRef, Forge, TetherConfig
from tether.contracts import CredentialStatus, ExpiryReminderInput
from tether.ops.stack import ensure_credential_watch
from tether.store import Store, connect_pool, migrate

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def forge() -> Iterator[FakeForge]:
    f = FakeForge()
    f.tokens.add("good-token")
    try:
        yield f
    finally:
        f.stop()


def _jwt(exp: float | None) -> str:
    def part(d: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")

    claims = {"sub": "agent"} | ({"exp": int(exp)} if exp is not None else {})
    return f"{part({'alg': 'HS256'})}.{part(claims)}.c2ln"


async def test_forge_token_verdicts(forge: FakeForge, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Forge(kind="github", api_url=forge.api_url)
    ref = CredentialRef(kind="forge_token", env="T_PROBE")

    monkeypatch.setenv("T_PROBE", "good-token")
    ok = await probe("gh", ref, cfg, NOW)
    assert ok.ok and ok.verified and ok.reason == "accepted (login tether-bot)"
    assert forge.auth_headers[-1] == "Bearer"

    # GitHub's expiry header: observed, and a past one means expired.
    forge.expiry = "2027-01-05 09:00:00 UTC"
    soon = await probe("gh", ref, cfg, NOW)
    assert soon.ok and soon.expires_at == datetime(2027, 1, 5, 9, tzinfo=UTC)
    forge.expiry = "2026-11-01 09:00:00 +0900"
    expired = await probe("gh", ref, cfg, NOW)
    assert not expired.ok and expired.reason == "expired on 2026-11-01 00:00 UTC"
    forge.expiry = None

    monkeypatch.setenv("T_PROBE", "revoked-token")
    rejected = await probe("gh", ref, cfg, NOW)
    assert not rejected.ok and rejected.reason.startswith("was rejected (HTTP 401")
    assert "revoked-token" not in rejected.model_dump_json()

    # A rate limit says nothing about the token: unverified, not blocked.
    forge.rate_limited = True
    limited = await probe("gh", ref, cfg, NOW)
    assert limited.ok and not limited.verified

    monkeypatch.delenv("T_PROBE")
    missing = await probe("gh", ref, cfg, NOW)
    assert not missing.ok
    assert missing.reason == "is not available: environment variable T_PROBE is not set"


async def test_jwt_declared_file_and_http_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_service: HttpService
) -> None:
    monkeypatch.setenv("T_JWT", _jwt((NOW - timedelta(hours=1)).timestamp()))
    jwt = await probe("deploy-jwt", CredentialRef(kind="jwt", env="T_JWT"), None, NOW)
    assert not jwt.ok and jwt.reason.startswith("expired on 2026-11-26 11:00")
    monkeypatch.setenv("T_JWT", _jwt((NOW + timedelta(days=3)).timestamp()))
    jwt = await probe("deploy-jwt", CredentialRef(kind="jwt", env="T_JWT"), None, NOW)
    assert jwt.ok and jwt.expires_at == NOW + timedelta(days=3)
    monkeypatch.setenv("T_JWT", "not-a-jwt")
    jwt = await probe("deploy-jwt", CredentialRef(kind="jwt", env="T_JWT"), None, NOW)
    assert not jwt.ok and "is not a JWT" in jwt.reason

    secret_file = tmp_path / "scanner-key"
    secret_file.write_text("sk-abc\n")
    declared = CredentialRef(kind="declared", file=str(secret_file), expires=date(2026, 11, 20))
    old = await probe("scanner", declared, None, NOW)
    assert not old.ok and old.reason == "expired on 2026-11-20 00:00 UTC"
    secret_file.unlink()
    gone = await probe("scanner", declared, None, NOW)
    assert not gone.ok and gone.reason.startswith(f"is not available: cannot read {secret_file}")

    monkeypatch.setenv("T_API", "api-key-123")
    http_ref = CredentialRef(kind="http", env="T_API", probe_url=f"{http_service.url}/me")
    assert (await probe("api", http_ref, None, NOW)).ok
    http_service.respond(403)
    refused = await probe("api", http_ref, None, NOW)
    assert not refused.ok and refused.reason.startswith("was rejected (HTTP 403")
    dead = CredentialRef(kind="http", env="T_API", probe_url="http://127.0.0.1:9/me")
    unreachable = await probe("api", dead, None, NOW)
    assert unreachable.ok and not unreachable.verified
    assert unreachable.reason == "could not be verified: ConnectError"


async def test_gitea_pull_requests_and_token_scheme() -> None:
    gitea = FakeForge(kind="gitea")
    try:
        gitea.tokens.add("gitea-token")
        gitea.pulls["acme/app"] = [(5, "Add search", "search", "coder", ["web/search.ts"])]
        cfg = Forge(kind="gitea", api_url=gitea.api_url)
        async with ForgeClient(cfg, "gitea-token", "gitea") as client:
            prs = await client.open_pull_requests("app", "acme/app")
        assert [(p.number, p.branch, p.author, p.files) for p in prs] == [
            (5, "search", "coder", ["web/search.ts"])
        ]
        assert set(gitea.auth_headers) == {"token"}
    finally:
        gitea.stop()


async def test_expiry_reminders_once_per_threshold(fresh_db: str) -> None:
    pool = await connect_pool(fresh_db)
    await migrate(pool)
    store = Store(pool)
    try:
        expires = NOW + timedelta(days=15)
        config = TetherConfig.model_validate(
            {
                "credentials": {
                    "github": {"kind": "forge_token", "env": "T_UNUSED"},
                    "scanner": {
                        "kind": "declared",
                        "env": "T_UNUSED",
                        "expires": (NOW + timedelta(days=40)).date().isoformat(),
                    },
                }
            }
        )
        # The github token's expiry was observed by a probe (GitHub's header).
        await store.record_credentials(
            [
                CredentialStatus(
                    name="github", kind="forge_token", ok=True, expires_at=expires, checked_at=NOW
                )
            ]
        )
        acts = SessionActivities(store, config)

        async def at(days: float) -> list[str]:
            moment = NOW + timedelta(days=days)
            return await acts.remind_expiring_credentials(ExpiryReminderInput(now=moment))

        assert await at(0) == []
        assert [k.rsplit(":", 1)[1] for k in await at(1.5)] == ["14d"]
        assert await at(2) == []  # once per threshold
        assert [k.rsplit(":", 1)[1] for k in await at(8.5)] == ["7d"]
        assert [k.rsplit(":", 1)[1] for k in await at(14.5)] == ["1d"]
        assert [k.rsplit(":", 1)[1] for k in await at(16)] == ["expired"]
        titles = [i.title for i in await store.inbox()]
        assert titles[-1] == "credential github expires in 13 days (2026-12-11 12:00 UTC)"
        assert "credential github expires in 12 hours" in titles[1]
        # The declared one crosses 14 days later on.
        assert [k.split(":")[1] for k in await at(27)] == ["scanner"]
    finally:
        await pool.close()


async def test_schedule_runs_the_watch_and_is_created_once(client: Client, fresh_db: str) -> None:
    pool = await connect_pool(fresh_db)
    await migrate(pool)
    store = Store(pool)
    queue = f"watch-{uuid.uuid4().hex[:8]}"
    soon = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    config = TetherConfig.model_validate(
        {"credentials": {"vault": {"kind": "declared", "env": "T_UNUSED", "expires": soon}}}
    )
    handle = client.get_schedule_handle(constants.CREDENTIAL_WATCH_SCHEDULE_ID)
    try:
        async with tether_worker.build_worker(client, queue, store, config, keys.KEYS):
            assert await ensure_credential_watch(client, queue, 24) in ("created", "updated")
            assert await ensure_credential_watch(client, queue, 24) == "unchanged"
            assert await ensure_credential_watch(client, queue, 12) == "updated"
            await handle.trigger()
            items = await eventually(store.inbox, "the watch's inbox item", seconds=10)
            assert [i.kind for i in items] == ["credential_expiring"]
            assert items[0].title.startswith("credential vault expires in 4 days")
    finally:
        await handle.delete()
        await pool.close()
