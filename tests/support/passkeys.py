"""A passkey as a browser's authenticator holds it, for tests that do not drive a browser: a P-256
key that signs a challenge for a relying party exactly as `navigator.credentials.get` returns it
(clientDataJSON in WebAuthn's order, authenticatorData with the relying party's hash, the user
present and verified, the counter)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tether.contracts import PasskeyAssertion, PasskeyEnrollment
from tether.trust.passkey_tags import b64url

RP_ID = "localhost"
ORIGIN = "https://localhost:8787"


class Authenticator:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = b64url(os.urandom(32))
        self.counter = 0

    @property
    def point(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def get(
        self, challenge: bytes, rp_id: str = RP_ID, origin: str = ORIGIN
    ) -> tuple[bytes, bytes, bytes]:
        """navigator.credentials.get: (authenticatorData, clientDataJSON, DER signature)."""
        self.counter += 1
        client_data = json.dumps(
            {
                "type": "webauthn.get",
                "challenge": b64url(challenge),
                "origin": origin,
                "crossOrigin": False,
            },
            separators=(",", ":"),
        ).encode()
        flags = bytes([0x05])  # user present, user verified
        data = hashlib.sha256(rp_id.encode()).digest() + flags + struct.pack(">I", self.counter)
        signed = data + hashlib.sha256(client_data).digest()
        return data, client_data, self.key.sign(signed, ec.ECDSA(hashes.SHA256()))

    def assertion(self, challenge: bytes, **kw: str) -> PasskeyAssertion:
        data, client_data, signature = self.get(challenge, **kw)
        return PasskeyAssertion(
            credential_id=self.credential_id,
            authenticator_data=b64url(data),
            client_data_json=b64url(client_data),
            signature=b64url(signature),
        )

    def enrollment(self, founder: Ed25519PrivateKey, name: str = "phone") -> PasskeyEnrollment:
        """Enrolled as `tether founder passkey add` enrolls one: signed with the founder's key."""
        unsigned = PasskeyEnrollment(
            credential_id=self.credential_id,
            public_key=base64.b64encode(self.point).decode(),
            rp_id=RP_ID,
            origin=ORIGIN,
            name=name,
            enrolled_at=datetime.now(UTC),
        )
        signature = base64.b64encode(founder.sign(unsigned.payload())).decode()
        return unsigned.model_copy(update={"signature": signature})
