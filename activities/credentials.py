"""Credential probes: is each credential an agent needs valid right now, and when does it expire?

Secrets are read here, by reference (an environment variable or a file), and go no further: a
probe returns the credential's name and a verdict. Any text that leaves this module is passed
through `scrub` with the secret's value.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from datetime import UTC, date, datetime, time
from pathlib import Path

import httpx
from temporalio.exceptions import ApplicationError

from tether import errors
from tether.config import CredentialRef, Forge, SecretRef
from tether.contracts import CredentialStatus

# GitHub: "2027-10-12 09:00:00 UTC", sometimes with a numeric offset ("+0900").
_GITHUB_EXPIRY_FORMATS = ("%Y-%m-%d %H:%M:%S %Z", "%Y-%m-%d %H:%M:%S %z")
GITHUB_EXPIRY_HEADER = "github-authentication-token-expiration"


class SecretUnavailable(Exception):
    """The secret could not be read; the message names where it was looked for."""


def read_secret(ref: SecretRef) -> str:
    if ref.env:
        value = os.environ.get(ref.env, "")
        if not value.strip():
            raise SecretUnavailable(f"is not available: environment variable {ref.env} is not set")
        return value.strip()
    assert ref.file is not None
    path = Path(ref.file).expanduser()
    try:
        value = path.read_text()
    except OSError as exc:
        raise SecretUnavailable(f"is not available: cannot read {path} ({exc.strerror})") from exc
    if not value.strip():
        raise SecretUnavailable(f"is not available: {path} is empty")
    return value.strip()


def scrub(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "[redacted]")
    return text


def credential_rejected(name: str, reason: str) -> ApplicationError:
    """The typed, non-retryable error every activity raises on an HTTP 401/403 of a credential."""
    return ApplicationError(
        f"credential {name} {reason}",
        name,
        reason,
        type=errors.CREDENTIAL_REJECTED,
        non_retryable=True,
    )


def auth_header(forge: Forge, token: str) -> dict[str, str]:
    scheme = "Bearer" if forge.kind == "github" else "token"
    return {"Authorization": f"{scheme} {token}"}


def forge_headers(forge: Forge, token: str) -> dict[str, str]:
    headers = auth_header(forge, token)
    if forge.kind == "github":
        headers |= {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    return headers


def parse_github_expiry(value: str) -> datetime | None:
    for fmt in _GITHUB_EXPIRY_FORMATS:
        try:
            parsed = datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT (no signature check: only the expiry matters here).

    Raises ValueError when the token is not a JWT.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("is not a JWT (expected three dot-separated parts)")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("is not a JWT (its payload is not base64url JSON)") from exc
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if exp is None:
        return None
    if not isinstance(exp, int | float):
        raise ValueError("has a non-numeric exp claim")
    return datetime.fromtimestamp(exp, UTC)


def declared_expiry(d: date | None) -> datetime | None:
    # A credential declared to expire on a date is unusable from the start of that day.
    return datetime.combine(d, time.min, UTC) if d else None


def _status(
    name: str, ref: CredentialRef, ok: bool, reason: str, now: datetime, **kw: object
) -> CredentialStatus:
    return CredentialStatus(
        name=name,
        kind=ref.kind,
        ok=ok,
        reason=reason,
        checked_at=now,
        **kw,
    )


async def probe(
    name: str, ref: CredentialRef, forge: Forge | None, now: datetime, probe_timeout: float = 10.0
) -> CredentialStatus:
    """Probe one credential. Never raises for a bad credential: the verdict says why."""
    try:
        secret = read_secret(ref)
    except SecretUnavailable as exc:
        return _status(name, ref, False, str(exc), now)

    expires = declared_expiry(ref.expires)
    try:
        if ref.kind == "jwt":
            try:
                exp = jwt_expiry(secret)
            except ValueError as exc:
                return _status(name, ref, False, str(exc), now)
            expires = min(filter(None, (expires, exp)), default=None)
            reason = "valid JWT" if exp else "valid JWT without an exp claim"
            return _finish(name, ref, now, expires, reason)
        if ref.kind == "declared":
            return _finish(name, ref, now, expires, "present")

        if ref.kind == "forge_token":
            if ref.probe_url:
                url = ref.probe_url
                headers = {ref.header: f"{ref.scheme} {secret}".strip()}
            elif forge is not None:
                url, headers = f"{forge.api_url}/user", forge_headers(forge, secret)
            else:
                return _status(
                    name,
                    ref,
                    False,
                    "cannot be probed: no [forge] and no probe_url configured",
                    now,
                )
        else:
            assert ref.probe_url is not None
            url = ref.probe_url
            headers = {ref.header: f"{ref.scheme} {secret}".strip()}
        try:
            async with httpx.AsyncClient(timeout=probe_timeout) as client:
                response = await client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            return _status(
                name,
                ref,
                True,
                scrub(f"could not be verified: {type(exc).__name__}", secret),
                now,
                verified=False,
                expires_at=expires,
            )
        if response.status_code in (401, 403) and not _rate_limited(response):
            return _status(
                name,
                ref,
                False,
                f"was rejected (HTTP {response.status_code} from {url})",
                now,
                expires_at=expires,
            )
        if not response.is_success:
            return _status(
                name,
                ref,
                True,
                f"could not be verified (HTTP {response.status_code} from {url})",
                now,
                verified=False,
                expires_at=expires,
            )
        header = response.headers.get(GITHUB_EXPIRY_HEADER)
        observed = parse_github_expiry(header) if header else None
        expires = min(filter(None, (expires, observed)), default=None)
        login = _login(response)
        return _finish(name, ref, now, expires, f"accepted{f' (login {login})' if login else ''}")
    except Exception as exc:  # a probe must answer; its failure is a verdict, not a crash
        return _status(
            name, ref, True, scrub(f"could not be verified: {exc}", secret), now, verified=False
        )


def _rate_limited(response: httpx.Response) -> bool:
    return response.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in response.headers


def _login(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    login = body.get("login") if isinstance(body, dict) else None
    return login if isinstance(login, str) else None


def _finish(
    name: str, ref: CredentialRef, now: datetime, expires: datetime | None, reason: str
) -> CredentialStatus:
    if expires is not None and expires <= now:
        return _status(
            name, ref, False, f"expired on {expires:%Y-%m-%d %H:%M} UTC", now, expires_at=expires
        )
    return _status(name, ref, True, reason, now, expires_at=expires)
