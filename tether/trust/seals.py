"""Seals: who sent a message that changes a workflow's state, checked inside the workflow.

Temporal has no per-signal authorisation: anyone who reaches its port can send any workflow any
signal or update. So every state-changing message carries a seal in its Temporal header
(`tether-seal`): an Ed25519 signature, by one of three roles, over

    the role, the signer's instance, the agent and runtime session it speaks for (gateway),
    a sequence number, the target workflow id, the handler's name, and the SHA-256 of the
    message's arguments in canonical JSON (`args_digest`).

- founder: the founder's key (`tether keygen`), used by the founder's `tether` commands;
- gateway: the gateway's key; it seals agents' reports and requests for the agent its token
  names (and the runtime session the report comes from);
- worker: the workers' key; activities seal workflow-to-workflow messages with it, so no
  private key is ever in workflow code or history.

Workers verify with public keys only (`Trust`), deterministically, in a workflow interceptor
(workflows/guard.py); which role may send which message is workflows/policy.py.

The sequence number is the signer's clock in microseconds (a JSON number any language reads
exactly, below 2**53), strictly increasing per signer instance: a workflow refuses a number it
has seen from that instance (a replay), one older than the 64 it remembers from it, and one
from before the workflow existed (less 5 minutes of clock skew). No wall clock is read in the
workflow, so a message queued through an outage still counts when the worker comes back.
"""

from __future__ import annotations

import base64
import contextvars
import hashlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

HEADER = "tether-seal"
VERSION = 1
ROLES = ("founder", "gateway", "worker")
# How many sequence numbers a workflow remembers per signer instance, and how many instances.
REMEMBERED_PER_SIGNER = 64
REMEMBERED_SIGNERS = 32
# A message signed this long before its workflow started is still accepted (clock skew), in the
# unit of sequence numbers (microseconds).
SKEW_US = 5 * 60 * 1_000_000


def canonical(value: Any) -> Any:
    """An argument as the seal covers it: a contract without the fields left at their default
    (so a field added later, with a default, does not change what an earlier message's seal
    covers), everything as JSON values."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_defaults=True)
    return to_jsonable_python(value)


def args_digest(args: Sequence[Any]) -> str:
    """SHA-256 over the arguments' canonical JSON: the sender hashes what it sends, the
    workflow what it decoded (it never sees the raw payloads), and both come to the same."""
    text = json.dumps(
        [canonical(a) for a in args], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def signed_bytes(seal: dict[str, Any], workflow_id: str, handler: str, digest: str) -> bytes:
    """Exactly what a seal's signature covers."""
    fields = [
        f"tether-seal/{VERSION}",
        str(seal.get("role") or ""),
        str(seal.get("signer") or ""),
        str(seal.get("agent") or ""),
        str(seal.get("session") or ""),
        str(seal.get("seq") or 0),
        workflow_id,
        handler,
        digest,
    ]
    return "\n".join(fields).encode()


@dataclass(frozen=True)
class Speaker:
    """Whom a gateway-sealed message speaks for: the agent its token names and, for a hook,
    the runtime session the event came from."""

    agent: str
    session: str | None = None


# The agent a gateway's call speaks for, set around the call (contextvars follow the task).
speaking_for: contextvars.ContextVar[Speaker | None] = contextvars.ContextVar(
    "tether_speaking_for", default=None
)


@contextmanager
def speaking(agent: str, session: str | None = None) -> Iterator[None]:
    token = speaking_for.set(Speaker(agent, session))
    try:
        yield
    finally:
        speaking_for.reset(token)


class Signer:
    """Seals messages with one role's private key; one per process."""

    def __init__(self, role: str, key: Ed25519PrivateKey, clock_offset_us: int = 0) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        self.role = role
        self._key = key
        # Added to the clock (tests on Temporal's time-skipping server, whose workflows live
        # ahead of the machine's clock).
        self._offset = clock_offset_us
        self.instance = f"{role}:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._last = 0
        self._mutex = threading.Lock()

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    def _next_seq(self) -> int:
        with self._mutex:
            self._last = max(self._last + 1, time.time_ns() // 1000 + self._offset)
            return self._last

    def seal(
        self,
        workflow_id: str,
        handler: str,
        args: Sequence[Any],
        speaker: Speaker | None = None,
    ) -> dict[str, Any]:
        seal: dict[str, Any] = {
            "v": VERSION,
            "role": self.role,
            "signer": self.instance,
            "seq": self._next_seq(),
        }
        if speaker is not None:
            seal["agent"] = speaker.agent
            if speaker.session:
                seal["session"] = speaker.session
        data = signed_bytes(seal, workflow_id, handler, args_digest(args))
        seal["sig"] = base64.b64encode(self._key.sign(data)).decode()
        return seal


@dataclass(frozen=True)
class Trust:
    """The public keys a worker accepts, per role (more than one while a key is rotated)."""

    keys: dict[str, tuple[Ed25519PublicKey, ...]] = field(default_factory=dict)

    def roles(self) -> list[str]:
        return [r for r in ROLES if self.keys.get(r)]

    def check(
        self, seal: dict[str, Any], workflow_id: str, handler: str, args: Sequence[Any]
    ) -> str | None:
        """None when one of the role's keys signed exactly this message; else why not."""
        role = seal.get("role")
        if role not in ROLES:
            return f"the seal names no known role ({str(role)[:40]!r})"
        keys = self.keys.get(str(role)) or ()
        if not keys:
            return f"this worker is configured with no {role} public key"
        if not isinstance(seal.get("seq"), int) or not isinstance(seal.get("signer"), str):
            return "the seal has no sequence number or signer"
        data = signed_bytes(seal, workflow_id, handler, args_digest(args))
        problem = signed_by(str(seal.get("sig") or ""), data, keys)
        if problem is None:
            return None
        if problem == NOT_BASE64:
            return "the seal's signature is not base64"
        return f"the signature does not verify with the {role}'s public key"


# What `signed_by` says when it refuses; callers say it in their own words.
NOT_BASE64 = "the signature is not base64"
NO_KEY_SIGNED = "the signature does not verify"


def signed_by(signature: str, data: bytes, keys: Iterable[Ed25519PublicKey]) -> str | None:
    """None when one of `keys` made `signature` (base64) over exactly `data`; else why not
    (NOT_BASE64 or NO_KEY_SIGNED).

    The one verifier of an Ed25519 signature in Tether: a seal (above), the founder's approval
    or order in the workflows' guard, and the same in the worker's activities and the CLI
    (tether/trust/signing.py). Pure and deterministic, so workflow code runs it.
    """
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        return NOT_BASE64
    for key in keys:
        try:
            key.verify(raw, data)
            return None
        except InvalidSignature:
            continue
    return NO_KEY_SIGNED


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def parse_public(text: str, what: str = "public key") -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise ValueError(
            f"{what} is not base64 of 32 raw Ed25519 bytes ({exc}); copy it from the .pub file "
            "`tether keygen` wrote"
        ) from exc


def describe(seal: dict[str, Any]) -> str:
    """A seal in one line for logs and the audit (never the signature)."""
    shown = {k: seal.get(k) for k in ("role", "signer", "agent", "session", "seq") if seal.get(k)}
    return json.dumps(shown, sort_keys=True)
