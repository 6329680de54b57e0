"""The founder's Ed25519 key: `tether keygen` makes it, `tether approve` signs with it, and the
worker verifies approvals with the public half only.

Temporal has no per-signal authorisation: anyone who can reach the namespace can signal any
workflow. An approval therefore proves itself: it is signed over the deployment, service, ref,
commit, decision and expiry, so an agent can neither forge one nor replay one for another commit.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tether.contracts import Approval, FounderOrder
from tether.errors import TetherError

# What the founder signs: a deployment approval, or an order lifting a governor's hold.
Signed = TypeVar("Signed", Approval, FounderOrder)
# A founder order is meant for now, not for later: it expires quickly.
ORDER_TTL = timedelta(minutes=10)

PRIVATE_KEY_FILE = "founder.key"
PUBLIC_KEY_FILE = "founder.pub"


def generate(home: Path, force: bool = False) -> tuple[Path, str]:
    """Write a new key pair under `home`; returns the private key's path and the public key
    (base64 of the raw 32 bytes), which goes into tether.toml as [founder] public_key."""
    private_path = home / PRIVATE_KEY_FILE
    if private_path.exists() and not force:
        raise TetherError(
            f"{private_path} already exists; keep it, or pass --force to replace it (approvals "
            "signed with the old key stop verifying once the worker has the new public key)"
        )
    home.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = private_path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    tmp.replace(private_path)
    public = public_key_text(key.public_key())
    (home / PUBLIC_KEY_FILE).write_text(public + "\n")
    return private_path, public


def public_key_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise TetherError(
            f"no founder key at {path}; make one with `tether keygen` (or pass --key)"
        ) from None
    except (ValueError, TypeError) as exc:
        raise TetherError(f"{path} is not an unencrypted Ed25519 private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise TetherError(f"{path} is not an Ed25519 private key")
    return key


def load_public(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValueError(
            f"founder public key is not base64 of 32 raw Ed25519 bytes ({exc}); copy it from "
            "`tether keygen` or $TETHER_HOME/founder.pub"
        ) from exc


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
    if not item.signature:
        return f"the {what} is not signed"
    try:
        signature = base64.b64decode(item.signature, validate=True)
    except ValueError:
        return "the signature is not base64"
    try:
        load_public(public_key_text).verify(signature, item.payload())
    except InvalidSignature:
        return "the signature does not verify with the founder's public key"
    return None


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
