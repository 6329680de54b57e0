"""The founder's passkeys: an enrollment the founder's key signs, and an action signed on the
founder's device with one (a WebAuthn assertion whose challenge is the action's digest)."""

from __future__ import annotations

import base64
from datetime import datetime

from pydantic import Field

from tether.contracts.base import Model


class PasskeyEnrollment(Model):
    """A passkey the founder enrolled: its credential, its P-256 public key (base64 of the 65
    uncompressed bytes), the relying party and origin its assertions name; signed with the
    founder's Ed25519 key over `payload()`, so no database row can add a passkey."""

    credential_id: str = Field(max_length=1400)  # base64url, as WebAuthn gives it
    public_key: str = Field(max_length=100)
    rp_id: str = Field(max_length=253)
    origin: str = Field(max_length=300)
    name: str = Field(default="", max_length=100)
    enrolled_at: datetime
    signature: str = Field(default="", max_length=200)

    def payload(self) -> bytes:
        fields = [
            "tether-passkey/v1",
            self.credential_id,
            self.public_key,
            self.rp_id,
            self.origin,
            self.name,
            self.enrolled_at.isoformat(),
        ]
        return "\n".join(fields).encode()

    def point(self) -> bytes:
        return base64.b64decode(self.public_key, validate=True)


class PasskeyAssertion(Model):
    """What `navigator.credentials.get` returned, each field base64url as WebAuthn gives it."""

    credential_id: str = Field(max_length=1400)
    authenticator_data: str = Field(max_length=4000)
    client_data_json: str = Field(max_length=4000)
    signature: str = Field(max_length=400)


class PasskeyProof(Model):
    """An action signed on the founder's device: the passkey's enrollment (signed with the
    founder's key) and its assertion over the action's digest."""

    enrollment: PasskeyEnrollment
    assertion: PasskeyAssertion


class PasskeyRevocation(Model):
    credential_id: str = Field(max_length=1400)
    name: str = Field(default="", max_length=100)
    by: str = Field(default="founder", max_length=100)


class Revocations(Model):
    """The passkeys revoked (their credential ids, with who revoked them and why named)."""

    revoked: dict[str, str] = Field(default_factory=dict)
