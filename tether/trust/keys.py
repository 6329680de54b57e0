"""Which keys a process holds and trusts, from the settings and tether.toml.

- a worker trusts the founder's, the gateway's and the workers' public keys, and holds the
  workers' private key (shared by every worker process: a message one worker seals, another
  verifies);
- the gateway holds the gateway's private key;
- the founder's `tether` commands hold the founder's private key, on the founder's machine only.

Public keys come from tether.toml ([founder], [gateway]) or, unset, from the .pub files beside
the private keys under TETHER_HOME, which `tether keygen` and `tether up` write.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tether.config import Founder, Settings, TetherConfig
from tether.errors import TetherError
from tether.trust import seals


# Key files under TETHER_HOME: <role>.key (PKCS#8 PEM, mode 600) and <role>.pub (base64).
def key_path(home: Path, role: str) -> Path:
    return home / f"{role}.key"


def write_key(home: Path, role: str, force: bool = False) -> tuple[Path, str]:
    """A new key pair for `role` under `home`: (private key path, public key text)."""
    private_path = key_path(home, role)
    if private_path.exists() and not force:
        raise TetherError(
            f"{private_path} already exists; keep it, or pass --force to replace it (messages "
            "signed with the old key stop verifying once the workers have the new public key)"
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
    public = seals.public_text(key.public_key())
    (home / f"{role}.pub").write_text(public + "\n")
    return private_path, public


def load_private(path: Path, role: str = "founder") -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        hint = "`tether keygen`" if role == "founder" else f"`tether keygen --role {role}`"
        raise TetherError(f"no {role} key at {path}; make one with {hint}") from None
    except (ValueError, TypeError) as exc:
        raise TetherError(f"{path} is not an unencrypted Ed25519 private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise TetherError(f"{path} is not an Ed25519 private key")
    return key


def load_public_file(path: Path) -> Ed25519PublicKey | None:
    try:
        return seals.parse_public(path.read_text(), str(path))
    except FileNotFoundError:
        return None


def private_key_path(settings: Settings, role: str) -> Path:
    explicit = {"worker": settings.worker_key, "gateway": settings.gateway_key}.get(role)
    return explicit or key_path(settings.home, role)


def signer(settings: Settings, role: str) -> seals.Signer:
    return seals.Signer(role, load_private(private_key_path(settings, role), role))


def founder_signer(settings: Settings, path: Path | None = None) -> seals.Signer | None:
    """The founder's signer when this machine holds the founder's key; None elsewhere."""
    key_file = path or key_path(settings.home, "founder")
    if not key_file.exists():
        return None
    return seals.Signer("founder", load_private(key_file, "founder"))


def _raw(key: Ed25519PublicKey) -> str:
    return seals.public_text(key)


def founder_public_text(settings: Settings, config: TetherConfig) -> str | None:
    """The founder's public key as configured, or from $TETHER_HOME/founder.pub."""
    return config.founder.key_text() or founder_pub_file(settings.home)


def founder_pub_path(home: Path) -> Path:
    """Where `tether up` (or `tether keygen`) leaves the founder's public key under `home`."""
    return key_path(home, "founder").with_suffix(".pub")


def founder_pub_file(home: Path) -> str | None:
    """The founder's public key `tether up` (or `tether keygen`) left under `home`, if any."""
    try:
        return founder_pub_path(home).read_text().strip() or None
    except OSError:
        return None


def with_founder_key(settings: Settings, config: TetherConfig) -> TetherConfig:
    """`config` with the founder's public key the workers judge orders and approvals by: the one
    tether.toml names, else $TETHER_HOME/founder.pub (what `tether up` makes)."""
    founder = founder_public_text(settings, config)
    if not founder or config.founder.key_text():
        return config
    return config.model_copy(update={"founder": Founder(public_key=founder)})


def worker_keys(settings: Settings, config: TetherConfig) -> tuple[seals.Trust, seals.Signer]:
    """What a worker trusts, and the workers' signer."""
    path = private_key_path(settings, "worker")
    if not path.exists():
        raise TetherError(
            f"no workers' key at {path}: every worker process needs the same one (it seals the "
            "messages workflows send each other). Make it once with `tether keygen --role "
            "worker` and give it to every worker (TETHER_WORKER_KEY); `tether up` makes it"
        )
    worker = signer(settings, "worker")
    keys: dict[str, tuple[Ed25519PublicKey, ...]] = {"worker": (worker.public_key,)}
    for role in ("founder", "gateway"):
        found: list[Ed25519PublicKey] = []
        # tether.toml's key is added by worker.build_worker (every worker gets it there). The
        # .pub file `tether up` or `tether keygen` wrote under TETHER_HOME, and the one a
        # cluster's keys job writes beside the workers' key.
        for place in (settings.home, path.parent):
            key = load_public_file(place / f"{role}.pub")
            if key is not None and all(_raw(key) != _raw(k) for k in found):
                found.append(key)
        if found:
            keys[role] = tuple(found)
    return seals.Trust(keys), worker


def ensure_keys(settings: Settings) -> list[str]:
    """`tether up` on one machine: the founder's, the gateway's and the workers' keys under
    TETHER_HOME, made when missing (a key given by path in the environment must exist)."""
    made = []
    for role in ("founder", "gateway", "worker"):
        path = key_path(settings.home, role) if role == "founder" else None
        path = path or private_key_path(settings, role)
        if path.exists():
            continue
        if path.parent != settings.home:
            raise TetherError(f"no {role} key at {path} (TETHER_{role.upper()}_KEY)")
        write_key(settings.home, role)
        made.append(role)
    return made
