"""An approval signed on the founder's device: the workflow verifies the passkey's assertion
itself (its enrollment signed with the founder's key, the challenge, the relying party, the
user verified, the signature), once; the worker's judge refuses a revoked passkey. Every
refusal is audited. The browser ceremony comes with the cockpit (issue 30); the assertions here
are made as a browser makes them."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from tests.support import keys
from tests.support.cli import tether
from tests.support.deploy import deploy_rig
from tests.support.helpers import clean_environment, eventually
from tests.support.passkeys import Authenticator
from tether import client as api
from tether.contracts import DeployState, DeployView, PasskeyApproval, PasskeyEnrollment
from tether.trust.passkeys import challenge_of


def _proof(
    view: DeployView, enrollment: PasskeyEnrollment, device: Authenticator
) -> PasskeyApproval:
    approval = api.prepare_approval(
        view, decision="approve", by="founder", reason="from the phone", ttl=timedelta(minutes=5)
    )
    assertion = device.assertion(challenge_of(approval.payload()))
    return PasskeyApproval(approval=approval, enrollment=enrollment, assertion=assertion)


async def test_a_deployment_approved_with_the_founders_passkey_rolls_out_and_forgeries_do_not(
    client: Client, fresh_db: str, tmp_path: Path, temporal_address: str
) -> None:
    # What a browser's page would send through: a client that seals nothing.
    plain = await Client.connect(temporal_address, data_converter=pydantic_data_converter)
    async with deploy_rig(client, fresh_db, tmp_path, signed_tags=False) as rig:
        phone = Authenticator()
        enrollment = phone.enrollment(rig.key)
        await rig.store.add_passkey(enrollment)

        # Forged: another device presenting the founder's enrollment; an enrollment someone
        # else's key signed; the founder's proof for another deployment.
        view = await rig.request("main")
        thief = Authenticator()
        thief.credential_id = phone.credential_id
        for proof, why in (
            (_proof(view, enrollment, thief), "the passkey's signature does not verify"),
            (
                _proof(view, thief.enrollment(Ed25519PrivateKey.generate()), thief),
                "the passkey's enrollment is not signed with the founder's key",
            ),
        ):
            with pytest.raises(api.Refused, match=why):
                await api.approve_by_passkey(plain, view.deployment_id, proof)
        other = await rig.request("main", agent="coder")
        with pytest.raises(api.Refused, match=f"the approval is for {other.deployment_id}"):
            await api.approve_by_passkey(
                plain, view.deployment_id, _proof(other, enrollment, phone)
            )
        still = await api.deploy_view(client, view.deployment_id)
        assert still.state == DeployState.QUEUED and still.approval is None

        # The founder's own: verified by the workflow, and the rollout runs.
        proof = _proof(view, enrollment, phone)
        verdict = await api.approve_by_passkey(plain, view.deployment_id, proof)
        assert verdict.accepted, verdict.reason
        assert verdict.reason == "signed on the founder's device (passkey 'phone')"
        # Sent again: a replay.
        with pytest.raises(api.Refused, match="already received"):
            await api.approve_by_passkey(plain, view.deployment_id, proof)
        done = await rig.finish(view)
        assert done.state == DeployState.DONE, done.reason

        # Revoked with the founder's command: the door still sees the founder's enrollment; the
        # judge refuses it.
        env = clean_environment(
            TETHER_HOME=str(keys.write(tmp_path / "home")),
            TEMPORAL_ADDRESS=temporal_address,
            DATABASE_URL=fresh_db,
            TETHER_TASK_QUEUE=rig.task_queue,
        )
        listed = await tether(env, "founder", "passkeys")
        assert listed.code == 0 and re.search(r"^phone\s+enrolled .* active$", listed.out, re.M)
        revoked = await tether(env, "founder", "passkeys", "--revoke", "phone")
        assert revoked.code == 0 and "revoked passkey phone" in revoked.out, revoked.err
        again = await tether(env, "founder", "passkeys", "--revoke", "phone")
        assert again.code == 2 and "no passkey named 'phone'" in again.err
        verdict = await api.approve_by_passkey(
            plain, other.deployment_id, _proof(other, enrollment, phone)
        )
        assert not verdict.accepted and "the passkey 'phone' was revoked" in verdict.reason
        # A database user puts the passkey back: Temporal still has the revocation.
        await rig.store.pool.execute("UPDATE passkeys SET revoked_at = NULL, revoked_by = NULL")
        verdict = await api.approve_by_passkey(
            plain, other.deployment_id, _proof(other, enrollment, phone)
        )
        assert not verdict.accepted, verdict.reason
        assert "was revoked (phone, by founder), as Temporal keeps it" in verdict.reason

        # Each refusal at the door is audited, and the passkey's enrollment and revocation are
        # in the audit chain.
        async def refused() -> list[str] | None:
            _, rows = await rig.store.refusals(limit=50)
            found = [r["reason"] for r in rows if r["handler"] == "approve_by_passkey"]
            return found if len(found) >= 4 else None

        reasons = await eventually(refused, "four refusals audited")
        assert any("already received" in r for r in reasons)
        kinds = [row["kind"] async for row in rig.store.audit_rows()]
        assert "passkey_enrolled" in kinds and "passkey_revoked" in kinds
