"""A staging tag signed by a passkey is the founder's as git sees it: a WebAuthn assertion, made
exactly as a browser makes one (ES256; clientDataJSON in WebAuthn's order; authenticatorData
with the relying party's hash, the flags and the counter), becomes an SSH signature that the
real `git verify-tag` (OpenSSH's ssh-keygen) accepts, and refuses for another tag, another
relying party or another key. The browser ceremony itself comes with the cockpit (issue 30)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.helpers import make_repo
from tests.support.passkeys import ORIGIN, RP_ID, Authenticator
from tether.trust.passkey_tags import allowed_signer, ssh_signature, tag_payload, to_sign


def _git(repo: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True)


def _signed_tag(repo: Path, device: Authenticator, tag: str, message: str) -> None:
    commit = _git(repo, "rev-parse", "HEAD").stdout.decode().strip()
    payload = tag_payload(commit, tag, "Founder <founder@example.com>", 1_800_000_000, message)
    data, client_data, der = device.get(to_sign(payload))
    armored = ssh_signature(device.point, RP_ID, data, client_data, der, ORIGIN)
    made = _git(repo, "hash-object", "-t", "tag", "-w", "--stdin", stdin=payload + armored.encode())
    assert made.returncode == 0, made.stderr
    assert (
        _git(repo, "update-ref", f"refs/tags/{tag}", made.stdout.decode().strip()).returncode == 0
    )


def _verify(repo: Path, signers: Path, tag: str) -> subprocess.CompletedProcess[bytes]:
    return _git(
        repo,
        "-c",
        "gpg.format=ssh",
        "-c",
        f"gpg.ssh.allowedSignersFile={signers}",
        "verify-tag",
        tag,
    )


def test_git_verifies_a_tag_signed_by_a_passkey_and_nothing_else(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "app")
    device = Authenticator()
    signers = tmp_path / "allowed_signers"
    signers.write_text(allowed_signer("founder", device.point, RP_ID))

    _signed_tag(repo, device, "staging/api/1", "Approved on the founder's phone\n")
    done = _verify(repo, signers, "staging/api/1")
    assert done.returncode == 0, done.stderr.decode()
    assert 'Good "git" signature for founder with ECDSA-SK key' in done.stderr.decode()

    # The same assertion on another tag's payload: refused.
    commit = _git(repo, "rev-parse", "HEAD").stdout.decode().strip()
    payload = tag_payload(commit, "staging/api/1", "Founder <f@x>", 1_800_000_000, "one\n")
    data, client_data, der = device.get(to_sign(payload))
    other = tag_payload(commit, "staging/api/2", "Founder <f@x>", 1_800_000_000, "two\n")
    armored = ssh_signature(device.point, RP_ID, data, client_data, der, ORIGIN)
    made = _git(repo, "hash-object", "-t", "tag", "-w", "--stdin", stdin=other + armored.encode())
    _git(repo, "update-ref", "refs/tags/staging/api/2", made.stdout.decode().strip())
    assert _verify(repo, signers, "staging/api/2").returncode != 0

    # Another device's passkey, not in the allowed signers: refused.
    _signed_tag(repo, Authenticator(), "staging/api/3", "someone else's\n")
    assert _verify(repo, signers, "staging/api/3").returncode != 0

    # The founder's passkey, trusted for another relying party: refused.
    elsewhere = tmp_path / "elsewhere_signers"
    elsewhere.write_text(allowed_signer("founder", device.point, "tether.example.com"))
    assert _verify(repo, elsewhere, "staging/api/1").returncode != 0


def test_an_assertion_for_another_relying_party_is_not_made_into_a_signature() -> None:
    device = Authenticator()
    data, client_data, der = device.get(to_sign(b"payload"), rp_id="evil.example")
    with pytest.raises(ValueError, match="not for relying party localhost"):
        ssh_signature(device.point, RP_ID, data, client_data, der, ORIGIN)
