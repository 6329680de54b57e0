"""Per-agent identity: the founder mints, rotates and revokes an agent's token; Tether keeps only
its hash and can tell which agent a token names."""

from __future__ import annotations

import json

from tests.support.cli import tether
from tether.hook.fingerprint import redact
from tether.store import Store


async def test_a_token_is_shown_once_kept_as_a_hash_rotated_and_revoked(
    cli_env: dict[str, str], store: Store
) -> None:
    agent = "tokened-coder"
    minted = await tether(cli_env, "agent", "token", agent)
    assert minted.code == 0, minted.err
    first = minted.out.splitlines()[1]
    assert first.startswith("tether_agent_") and len(first) > 40
    assert "TETHER_AGENT_TOKEN" in minted.out
    assert await store.agent_for_token(first) == agent
    # Only a hash is stored: the token appears in no column of any row.
    rows = await store.pool.fetch("SELECT * FROM agent_tokens WHERE agent = $1", agent)
    assert len(rows) == 1 and first not in json.dumps([dict(r) for r in rows], default=str)
    assert rows[0]["last_used_at"] is not None  # the lookup above used it

    rotated = await tether(cli_env, "agent", "token", agent, "--rotate")
    second = rotated.out.splitlines()[1]
    assert rotated.code == 0 and "earlier tokens no longer work" in rotated.out
    assert await store.agent_for_token(first) is None
    assert await store.agent_for_token(second) == agent
    assert await store.agent_for_token(second + "x") is None
    assert await store.agent_for_token("ghp_not_ours") is None

    revoked = await tether(cli_env, "agent", "revoke", agent)
    assert revoked.code == 0 and "revoked 1 token(s)" in revoked.out
    assert await store.agent_for_token(second) is None
    again = await tether(cli_env, "agent", "revoke", agent)
    assert again.code == 3 and f"{agent} has no token to revoke" in again.err

    listed = await tether(cli_env, "agent", "tokens", "--agent", agent, "--json")
    shown = json.loads(listed.out)
    assert [bool(r["revoked_at"]) for r in shown] == [True, True]
    assert first not in listed.out and second not in listed.out
    assert "token_hash" not in listed.out
    # A token that reaches a transcript or an error message is redacted like any secret.
    assert second not in redact(f"curl -H 'Authorization: x {second}'")


async def test_a_token_is_minted_only_for_a_valid_agent_name(cli_env: dict[str, str]) -> None:
    bad = await tether(cli_env, "agent", "token", "Coder Bot")
    assert bad.code == 2 and "is not an agent name" in bad.err
    assert len(bad.err.strip().splitlines()) == 1
