"""The founder's Ed25519 key: `tether keygen` makes it, `tether approve` signs with it, and the
worker verifies approvals with the public half only.

Temporal has no per-signal authorisation: anyone who can reach the namespace can signal any
workflow. An approval therefore proves itself: it is signed over the deployment, service, ref,
commit, decision and expiry, so an agent can neither forge one nor replay one for another commit.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tether.contracts import Approval, FounderOrder, PasskeyEnrollment
from tether.trust import keys, passkeys, seals

# What the founder signs: a deployment approval, an order lifting a governor's hold, or a
# passkey's enrollment (the device that may then act for the founder).
Signed = TypeVar("Signed", Approval, FounderOrder, PasskeyEnrollment)
# A founder order is meant for now, not for later: it expires quickly.
ORDER_TTL = timedelta(minutes=10)

PRIVATE_KEY_FILE = "founder.key"
PUBLIC_KEY_FILE = "founder.pub"


def generate(home: Path, force: bool = False) -> tuple[Path, str]:
    """Write a new key pair under `home`; returns the private key's path and the public key
    (base64 of the raw 32 bytes), which goes into tether.toml as [founder] public_key."""
    return keys.write_key(home, "founder", force)


public_key_text = seals.public_text


def load_private(path: Path) -> Ed25519PrivateKey:
    return keys.load_private(path, "founder")


def load_public(text: str) -> Ed25519PublicKey:
    return seals.parse_public(text, "founder public key")


def sign(item: Signed, key: Ed25519PrivateKey) -> Signed:
    signature = base64.b64encode(key.sign(item.payload())).decode()
    return item.model_copy(update={"signature": signature})


def verify(item: Approval | FounderOrder, public_key_text: str | None) -> str | None:
    """None when the founder's key signed exactly this; else why not."""
    what = "approval" if isinstance(item, Approval) else "order"
    if not public_key_text:
        return (
            "no founder public key is configured ([founder] public_key in tether.toml, from "
            "`tether keygen`)"
        )
    if isinstance(item, FounderOrder) and item.passkey is not None:
        founder = [load_public(public_key_text)]
        proof = item.passkey
        challenge = passkeys.challenge_of(item.payload())
        return passkeys.verify(proof.enrollment, proof.assertion, challenge, founder)
    if not item.signature:
        return f"the {what} is not signed"
    problem = seals.signed_by(item.signature, item.payload(), [load_public(public_key_text)])
    if problem == seals.NO_KEY_SIGNED:
        return "the signature does not verify with the founder's public key"
    return problem


def order(action: str, subject: str, by: str, reason: str, key: Ed25519PrivateKey) -> FounderOrder:
    """A signed order, valid for ORDER_TTL from now."""
    now = datetime.now(UTC)
    unsigned = FounderOrder(
        action=action,
        subject=subject,
        reason=reason,
        by=by,
        signed_at=now,
        expires_at=now + ORDER_TTL,
    )
    return sign(unsigned, key)
