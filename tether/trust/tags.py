"""Founder-signed deployment tags: `staging/<service>/<n>`, annotated and signed with the
founder's Ed25519 key in git's SSH signature format (`gpg.format=ssh`), so that any deploy
pipeline, `git verify-tag`, and Tether's workers can tell the founder's tag from anyone else's.

The same key signs Tether's approvals and orders: `tether keygen` makes one key for both uses.
Signing and verifying run git and `ssh-keygen` (OpenSSH's, which git calls for SSH signatures);
the private key is written, in OpenSSH's format, to a file of mode 600 only for the moment git
signs, and removed at once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tether.errors import TetherError

KINDS = ("staging", "production")
# The principal the allowed-signers file names; git shows it when a tag verifies.
PRINCIPAL = "founder"
_GIT_TIMEOUT = 60


def tag_pattern(kind: str, service: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(kind)}/{re.escape(service)}/(\d+)$")


def ssh_public(key: Ed25519PublicKey) -> str:
    """The key as OpenSSH writes it: `ssh-ed25519 AAAA...`."""
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def allowed_signers(key: Ed25519PublicKey) -> str:
    """An allowed-signers file (ssh-keygen(1), ALLOWED SIGNERS) trusting only the founder's key,
    for git tags and commits."""
    return f'{PRINCIPAL} namespaces="git" {ssh_public(key)}\n'


def require_ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise TetherError(
            "ssh-keygen is not installed; git signs and verifies SSH-format tags with it "
            "(Debian/Ubuntu: apt install openssh-client; macOS has it)"
        )
    return found


def _git(
    repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        timeout=_GIT_TIMEOUT,
        check=False,
        env=env,
    )


def _failed(done: subprocess.CompletedProcess[str], what: str) -> TetherError:
    said = (done.stderr or done.stdout).strip().splitlines()
    return TetherError(f"{what} failed: {said[-1] if said else f'exit {done.returncode}'}")


def has_remote(repo: Path, remote: str | None) -> bool:
    if not remote:
        return False
    return _git(repo, "remote", "get-url", remote).returncode == 0


def fetch_tags(repo: Path, remote: str | None, kind: str, service: str) -> None:
    """The remote's tags of this kind and service, replacing local ones (a moved tag shows)."""
    if not has_remote(repo, remote):
        return
    assert remote is not None
    spec = f"+refs/tags/{kind}/{service}/*:refs/tags/{kind}/{service}/*"
    done = _git(repo, "fetch", "--quiet", "--no-tags", remote, spec)
    if done.returncode != 0:
        raise _failed(done, f"git fetch of {kind}/{service}/* tags from {remote}")


def tags(repo: Path, kind: str, service: str) -> list[str]:
    done = _git(repo, "tag", "--list", f"{kind}/{service}/*")
    if done.returncode != 0:
        raise _failed(done, "git tag --list")
    pattern = tag_pattern(kind, service)
    found = [t for t in done.stdout.split() if pattern.match(t)]
    return sorted(found, key=lambda t: int(pattern.match(t).group(1)))  # type: ignore[union-attr]


def next_tag(repo: Path, remote: str | None, kind: str, service: str) -> str:
    fetch_tags(repo, remote, kind, service)
    existing = tags(repo, kind, service)
    pattern = tag_pattern(kind, service)
    last = int(pattern.match(existing[-1]).group(1)) if existing else 0  # type: ignore[union-attr]
    return f"{kind}/{service}/{last + 1}"


def create_signed_tag(
    repo: Path, tag: str, commit: str, message: str, key: Ed25519PrivateKey, by: str
) -> None:
    """An annotated tag on `commit`, signed with `key` in git's SSH format."""
    require_ssh_keygen()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    with tempfile.TemporaryDirectory(prefix="tether-sign-") as tmp:
        path = Path(tmp) / "founder"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        env = {
            **os.environ,
            "GIT_COMMITTER_NAME": os.environ.get("GIT_COMMITTER_NAME") or by,
            "GIT_COMMITTER_EMAIL": os.environ.get("GIT_COMMITTER_EMAIL") or f"{by}@tether.invalid",
        }
        done = _git(
            repo,
            "-c",
            "gpg.format=ssh",
            "-c",
            f"user.signingkey={path}",
            "tag",
            "--sign",
            "--annotate",
            "--message",
            message,
            tag,
            commit,
            env=env,
        )
    if done.returncode != 0:
        raise _failed(done, f"signing the tag {tag}")


def push_tag(repo: Path, remote: str | None, tag: str) -> bool:
    """Push the tag to `remote`; False when the repository has no such remote."""
    if not has_remote(repo, remote):
        return False
    assert remote is not None
    done = _git(repo, "push", "--quiet", remote, f"refs/tags/{tag}")
    if done.returncode != 0:
        raise _failed(done, f"pushing {tag} to {remote}")
    return True


def verify_tag(
    repo: Path,
    tag: str,
    commit: str | None,
    founder: Ed25519PublicKey,
    passkeys: str = "",
) -> str | None:
    """None when `tag` is an annotated tag the founder's key signed (git verify-tag, against an
    allowed-signers file holding only that key, and `passkeys`: the allowed-signers lines of
    the passkeys the founder enrolled, tether/trust/passkey_tags.py) and, with `commit`, points
    at it; else why not."""
    require_ssh_keygen()
    kind = _git(repo, "cat-file", "-t", f"refs/tags/{tag}")
    if kind.returncode != 0:
        return f"there is no tag {tag} in {repo}"
    if kind.stdout.strip() != "tag":
        return f"{tag} is a lightweight tag: only an annotated tag signed by the founder counts"
    with tempfile.TemporaryDirectory(prefix="tether-verify-") as tmp:
        signers = Path(tmp) / "allowed_signers"
        signers.write_text(allowed_signers(founder) + passkeys)
        done = _git(
            repo, "-c", f"gpg.ssh.allowedSignersFile={signers}", "verify-tag", f"refs/tags/{tag}"
        )
    if done.returncode != 0:
        said = (done.stderr or "").strip()
        if "no signature" in said.lower():
            return f"{tag} is not signed"
        why = said.splitlines()[-1] if said else "git verify-tag refused it"
        return f"{tag} is not signed with the founder's key ({why})"
    if commit is not None:
        points = _git(repo, "rev-parse", f"refs/tags/{tag}^{{commit}}")
        target = points.stdout.strip()
        if points.returncode != 0 or target != commit:
            return f"{tag} points at {target[:12] or '?'}, not at the approved commit {commit[:12]}"
    return None


def tagger(repo: Path, tag: str) -> str:
    """Who the tag says made it (name <email>), for the audit."""
    done = _git(repo, "for-each-ref", "--format=%(taggername) %(taggeremail)", f"refs/tags/{tag}")
    return done.stdout.strip() or "unknown"


def target(repo: Path, tag: str) -> str:
    """The commit the tag points at (empty when it does not resolve)."""
    done = _git(repo, "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}")
    return done.stdout.strip()


def write_tag(repo: Path, tag: str, data: bytes) -> None:
    """Store an annotated tag object made elsewhere (its payload and signature: a tag signed on
    the founder's device) as `refs/tags/<tag>`; an existing tag of that name is not replaced."""
    made = subprocess.run(
        ["git", "-C", str(repo), "hash-object", "-t", "tag", "-w", "--stdin"],
        input=data,
        capture_output=True,
        timeout=_GIT_TIMEOUT,
    )
    if made.returncode != 0:
        raise TetherError(f"git could not store the tag {tag}: {made.stderr.decode()[-300:]}")
    name = made.stdout.decode().strip()
    done = _git(repo, "update-ref", f"refs/tags/{tag}", name, "")
    if done.returncode != 0:
        raise _failed(done, f"writing the tag {tag}")
