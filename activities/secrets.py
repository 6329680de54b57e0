"""What a check command may see of the worker, and what of its output may be stored.

Check evidence is stored in workflow history and PostgreSQL and shown in the Web UI; check
commands come from task files anyone with the CLI can write. So:

- The environment a check runs with has no secret in it: no variable whose name looks secret,
  and no variable tether.toml names as a secret (a credential's or the webhook's `env`), whatever
  its name (`SLACK_WEBHOOK_URL` does not look like one).
- Every secret the worker knows (those variables' values, and the contents of secret files
  tether.toml names) is replaced in evidence by `[NAME redacted]`, also base64 (standard and
  URL-safe, at any alignment), hex and reversed: a check that prints `env | base64` or a token
  backwards stores no usable secret.
- Where the system allows it (`unshare`, util-linux), a check runs in its own PID and mount
  namespaces with a fresh /proc: it cannot read the worker's own environment through
  /proc/<worker pid>/environ.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from tether.config import SecretRef, TetherConfig

log = logging.getLogger("tether.checks")

# Names that look secret: their variables never reach a check, their values never evidence.
_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|API_?KEY|PRIVATE|CREDENTIAL|AUTH|DATABASE_URL|DSN|WEBHOOK",
    re.IGNORECASE,
)
# Shorter values are too likely to occur by chance to be replaced everywhere.
MIN_REDACTED_LENGTH = 6


def looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def _refs(config: TetherConfig | None) -> list[tuple[str, SecretRef]]:
    if config is None:
        return []
    refs: list[tuple[str, SecretRef]] = [
        (f"credential {name}", ref) for name, ref in config.credentials.items()
    ]
    if config.notifications.webhook is not None:
        refs.append(("webhook", config.notifications.webhook))
    return refs


def secret_names(config: TetherConfig | None) -> set[str]:
    """Environment variables holding a secret: secret-looking names and those tether.toml
    names as a secret's `env`."""
    names = {name for name in os.environ if looks_secret(name)}
    names |= {ref.env for _, ref in _refs(config) if ref.env}
    return names


def _url_parts(label: str, value: str) -> dict[str, str]:
    """A URL's password, and its query values, as secrets of their own (a check may print just
    the password of DATABASE_URL)."""
    if "://" not in value:
        return {}
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return {}
    found = {f"{label} password": password} if password else {}
    for key, item in parse_qsl(parts.query):
        found[f"{label} {key}"] = item
    return {k: v for k, v in found.items() if len(v) >= MIN_REDACTED_LENGTH}


def known_secrets(config: TetherConfig | None) -> dict[str, str]:
    """Label -> value of every secret the worker holds now (and the parts of secret URLs)."""
    found = {
        name: value
        for name in secret_names(config)
        if len(value := os.environ.get(name, "")) >= MIN_REDACTED_LENGTH
    }
    for name, value in list(found.items()):
        found.update(_url_parts(name, value))
    for label, ref in _refs(config):
        if ref.file:
            try:
                value = Path(ref.file).expanduser().read_text().strip()
            except (OSError, UnicodeDecodeError):
                continue
            if len(value) >= MIN_REDACTED_LENGTH:
                found[label] = value
    return found


def check_environment(config: TetherConfig | None = None) -> dict[str, str]:
    """The worker's environment without any secret: what a check command runs with."""
    hidden = secret_names(config)
    return {k: v for k, v in os.environ.items() if k not in hidden}


def _b64_forms(raw: bytes) -> Iterable[str]:
    """The base64 text of `raw` as it appears inside the encoding of anything containing it:
    three alignments, minus the characters that mix in neighbouring bytes."""
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw + b"\0\0").decode()
        skip = (shift * 4 + 2) // 3
        keep = (len(raw) * 4) // 3 - 1
        middle = encoded[skip : skip + keep]
        if len(middle) >= MIN_REDACTED_LENGTH:
            yield middle
            yield middle.replace("+", "-").replace("/", "_")


@functools.lru_cache(maxsize=256)
def forms(value: str) -> frozenset[str]:
    """The value and the encodings of it a check could print to smuggle it out."""
    raw = value.encode()
    found = {value, value[::-1], raw.hex(), raw.hex().upper()}
    found.update(_b64_forms(raw))
    return frozenset(f for f in found if len(f) >= MIN_REDACTED_LENGTH)


def redact(text: str, secrets: dict[str, str]) -> str:
    """Every known secret, in every form, replaced by `[LABEL redacted]`."""
    for label, value in sorted(secrets.items(), key=lambda kv: -len(kv[1])):
        for form in sorted(forms(value), key=len, reverse=True):
            if form in text:
                text = text.replace(form, f"[{label} redacted]")
    return text


@functools.cache
def _unshare_prefix() -> tuple[str, ...]:
    """How to start a command in its own PID namespace with a fresh /proc, or () where the
    system cannot (no `unshare`, no user namespaces): then the worker says so, once."""
    unshare = shutil.which("unshare")
    if unshare is None:
        log.warning("checks can read the worker's /proc: `unshare` (util-linux) is not installed")
        return ()
    prefix = [unshare, "--pid", "--fork", "--mount-proc", "--kill-child"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        probe = None
    if probe is None or probe.returncode != 0:
        detail = probe.stderr.decode(errors="replace").strip() if probe else "did not run"
        log.warning("checks can read the worker's /proc: unshare failed (%s)", detail)
        return ()
    return tuple(prefix)


def isolated(argv: Sequence[str] | str) -> list[str] | str:
    """The command, started in its own PID namespace when the system allows it."""
    prefix = _unshare_prefix()
    if not prefix:
        return argv if isinstance(argv, str) else list(argv)
    command = ["/bin/sh", "-c", argv] if isinstance(argv, str) else list(argv)
    return [*prefix, *command]
