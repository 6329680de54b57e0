"""Verifying an action signed with one of the founder's passkeys, as the workflow does it: no I/O,
deterministic, so the workflows' guard runs it in workflow code, and the worker's judge runs the
same function (one verifier).

What is checked, in order: the enrollment is signed with the founder's key (a passkey is the
founder's only if the founder's key says so); the assertion is by that credential; its
clientDataJSON says `webauthn.get`, the expected challenge and the enrolled origin; its
authenticatorData is for the enrolled relying party, with the user present and verified (a PIN
or a biometric, not a tap alone); and the ECDSA P-256 signature over authenticatorData and
SHA-256 of clientDataJSON verifies with the enrolled public key. A replay is the caller's to
refuse (the guard remembers the signatures it accepted).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tether.contracts.passkeys import PasskeyAssertion, PasskeyEnrollment
from tether.trust import seals
from tether.trust.passkey_tags import b64url

# authenticatorData flags: user present, user verified.
_UP, _UV = 0x01, 0x04


def unpadded(data: str) -> bytes:
    """base64url, with or without its padding."""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def challenge_of(payload: bytes) -> bytes:
    """The WebAuthn challenge for an action: SHA-256 of what it says."""
    return hashlib.sha256(b"tether-passkey-action/v1\n" + payload).digest()


def verify(
    enrollment: PasskeyEnrollment,
    assertion: PasskeyAssertion,
    challenge: bytes,
    founder: Iterable[Ed25519PublicKey],
) -> str | None:
    """None when the founder's enrolled passkey signed exactly `challenge`; else why not."""
    if seals.signed_by(enrollment.signature, enrollment.payload(), founder) is not None:
        return "the passkey's enrollment is not signed with the founder's key"
    if assertion.credential_id != enrollment.credential_id:
        return "the assertion is by another passkey than the enrolled one it names"
    try:
        data = unpadded(assertion.authenticator_data)
        client_json = unpadded(assertion.client_data_json)
        signature = unpadded(assertion.signature)
        client = json.loads(client_json)
        point = enrollment.point()
    except (ValueError, binascii.Error):
        return "the assertion is not base64url and JSON as WebAuthn gives it"
    if not isinstance(client, dict) or client.get("type") != "webauthn.get":
        return "the assertion is not a WebAuthn sign-in (type webauthn.get)"
    if client.get("challenge") != b64url(challenge):
        return "the assertion signs another action than this one"
    if client.get("origin") != enrollment.origin:
        return f"the assertion comes from {str(client.get('origin'))[:100]!r}, not the cockpit"
    if len(data) < 37 or data[:32] != hashlib.sha256(enrollment.rp_id.encode()).digest():
        return "the assertion is for another relying party"
    if data[32] & (_UP | _UV) != (_UP | _UV):
        return "the passkey did not verify the founder (no PIN or biometric)"
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        key.verify(
            signature, data + hashlib.sha256(client_json).digest(), ec.ECDSA(hashes.SHA256())
        )
    except (ValueError, InvalidSignature):
        return "the passkey's signature does not verify"
    return None
