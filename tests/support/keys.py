"""The test session's keys: one founder, one gateway, one workers' key, made once per process.

The `client` fixture seals as the founder (the tests act as the founder unless they say
otherwise), workers trust all three, and `write(home)` puts them where a `tether` subprocess
looks for them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tether.trust import seals
from tether.trust.keys import key_path, load_private, write_key

# One set per test session: a subprocess (importing this module again) finds the same keys.
_DIR = Path(os.environ.get("TESTS_KEYS_DIR") or tempfile.mkdtemp(prefix="tether-test-keys-"))
os.environ["TESTS_KEYS_DIR"] = str(_DIR)
for _role in seals.ROLES:
    if not (_DIR / f"{_role}.key").exists():
        write_key(_DIR, _role)

# Temporal's time-skipping server moves its workflows' clock ahead of the machine's, and a
# workflow refuses what was signed before it began: the tests' signers run a year ahead, which
# holds on both servers (a real `tether` subprocess signs with the real clock, on the dev server).
AHEAD_US = 365 * 24 * 3600 * 1_000_000


def _signer(role: str) -> seals.Signer:
    return seals.Signer(role, load_private(key_path(_DIR, role), role), AHEAD_US)


FOUNDER = _signer("founder")
GATEWAY = _signer("gateway")
WORKER = _signer("worker")
TRUST = seals.Trust(
    {
        "founder": (FOUNDER.public_key,),
        "gateway": (GATEWAY.public_key,),
        "worker": (WORKER.public_key,),
    }
)
KEYS = (TRUST, WORKER)


def write(home: Path, roles: tuple[str, ...] = seals.ROLES) -> Path:
    """Copy the test keys (private and public halves) into `home`, keeping a key a test made
    there itself."""
    home.mkdir(parents=True, exist_ok=True)
    for role in roles:
        if (home / f"{role}.key").exists():
            continue
        for suffix in (".key", ".pub"):
            shutil.copy2(_DIR / f"{role}{suffix}", home / f"{role}{suffix}")
    return home


def public_text(role: str) -> str:
    return (_DIR / f"{role}.pub").read_text().strip()
