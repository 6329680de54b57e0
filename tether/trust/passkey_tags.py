"""The founder's tag signed on the founder's own device: an SSH signature made from a WebAuthn
(passkey) assertion, which `git verify-tag` (OpenSSH's `ssh-keygen -Y verify`) accepts.

OpenSSH knows FIDO keys (`sk-ecdsa-sha2-nistp256@openssh.com`) and a signature type for what a
browser returns, `webauthn-sk-ecdsa-sha2-nistp256@openssh.com` (since OpenSSH 8.4; its check is
`webauthn_check_prepare_hash` in ssh-ecdsa-sk.c, and `sshsig_wrap_verify` in sshsig.c lets any
signature type but RSA's through). What makes a passkey's assertion such a signature:

- the passkey's public key is an ES256 (P-256) point; as an SSH key it is the `sk-ecdsa` key
  with that point and, as its FIDO "application", the WebAuthn relying party id (the gateway's
  host): OpenSSH checks the assertion's rpIdHash as SHA-256 of the application;
- the WebAuthn challenge is the bytes SSHSIG signs for namespace `git` (the magic, the
  namespace, the hash algorithm and SHA-512 of the tag's payload), so clientDataJSON begins with
  `{"type":"webauthn.get","challenge":"<those bytes, base64url>","origin":"<origin>"`, as every
  browser serialises it (the order is WebAuthn's own);
- the signature is the authenticator's ECDSA signature over authenticatorData and SHA-256 of
  clientDataJSON, with the flags, the counter, the origin and clientDataJSON beside it.

No key leaves the device: the gateway builds the tag's payload, asks the browser to sign its
SSHSIG bytes, and writes the tag with the signature it gets back. Standard library and
`cryptography` only.
"""

from __future__ import annotations

import base64
import hashlib
import struct

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

KEY_TYPE = "sk-ecdsa-sha2-nistp256@openssh.com"
SIGNATURE_TYPE = "webauthn-sk-ecdsa-sha2-nistp256@openssh.com"
NAMESPACE = "git"
HASH = "sha512"
_MAGIC = b"SSHSIG"


def _string(data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return struct.pack(">I", len(raw)) + raw


def _mpint(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    if raw[0] & 0x80:
        raw = b"\0" + raw
    return _string(raw)


def b64url(data: bytes) -> str:
    """base64url without padding, as WebAuthn writes its fields."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ssh_public_key(point: bytes, rp_id: str) -> bytes:
    """The passkey as an OpenSSH FIDO key: its uncompressed P-256 point (65 bytes, 0x04 x y)
    and the relying party id as the application."""
    if len(point) != 65 or point[0] != 4:
        raise ValueError("a P-256 public key is 65 bytes, uncompressed (0x04, x, y)")
    return _string(KEY_TYPE) + _string("nistp256") + _string(point) + _string(rp_id)


def allowed_signer(principal: str, point: bytes, rp_id: str) -> str:
    """The allowed-signers line (`gpg.ssh.allowedSignersFile`) that makes git trust the passkey
    for tags."""
    key = base64.b64encode(ssh_public_key(point, rp_id)).decode()
    return f'{principal} namespaces="{NAMESPACE}" {KEY_TYPE} {key}\n'


def to_sign(message: bytes) -> bytes:
    """What SSHSIG signs for `message` in namespace git: the WebAuthn challenge to ask for."""
    return (
        _MAGIC
        + _string(NAMESPACE)
        + _string(b"")
        + _string(HASH)
        + _string(hashlib.sha512(message).digest())
    )


def ssh_signature(
    point: bytes,
    rp_id: str,
    authenticator_data: bytes,
    client_data_json: bytes,
    der_signature: bytes,
    origin: str,
) -> str:
    """The armored SSH signature (as git appends it to a tag) of a WebAuthn assertion whose
    challenge was `to_sign(message)`."""
    if len(authenticator_data) < 37:
        raise ValueError("authenticatorData is at least 37 bytes")
    if hashlib.sha256(rp_id.encode()).digest() != authenticator_data[:32]:
        raise ValueError(f"the assertion is not for relying party {rp_id}")
    flags = authenticator_data[32]
    counter = struct.unpack(">I", authenticator_data[33:37])[0]
    extensions = authenticator_data[37:]
    r, s = decode_dss_signature(der_signature)
    signature = (
        _string(SIGNATURE_TYPE)
        + _string(_mpint(r) + _mpint(s))
        + bytes([flags])
        + struct.pack(">I", counter)
        + _string(origin)
        + _string(client_data_json)
        + _string(extensions)
    )
    blob = (
        _MAGIC
        + struct.pack(">I", 1)
        + _string(ssh_public_key(point, rp_id))
        + _string(NAMESPACE)
        + _string(b"")
        + _string(HASH)
        + _string(signature)
    )
    text = base64.b64encode(blob).decode()
    lines = [text[i : i + 70] for i in range(0, len(text), 70)]
    return "-----BEGIN SSH SIGNATURE-----\n" + "\n".join(lines) + "\n-----END SSH SIGNATURE-----\n"


def tag_payload(commit: str, tag: str, tagger: str, when: int, message: str) -> bytes:
    """An annotated tag's object before its signature (what git verifies the signature over)."""
    text = f"object {commit}\ntype commit\ntag {tag}\ntagger {tagger} {when} +0000\n\n{message}"
    return (text if text.endswith("\n") else text + "\n").encode()
