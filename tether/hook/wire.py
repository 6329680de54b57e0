"""HTTP from the standard library, for the `tether hook` command: it forwards the runtime's hook
input to the gateway on every tool call, and must not pay for importing an HTTP client.

Plain `http://` (the gateway of `tether up` on the loopback address, or inside a cluster's
network) is spoken over a socket: one request per connection, `Connection: close`, a body of
known length or chunked. Importing urllib.request (and with it ssl, email and http.client)
costs a hook more than the request itself on a slow machine; `https://` still goes through
urllib.request, imported only then.

In Tether's sandbox the agent has no network of its own: `http_proxy` names the sandbox's proxy,
which lets through only what the agent may reach (the gateway among them). A plain request then
goes to the proxy, in absolute form, with the proxy's credentials (RFC 9112 section 3.2.2).
"""

from __future__ import annotations

import os
import socket
from urllib.parse import SplitResult, unquote, urlsplit

from tether import errors

# The certificate (PEM) the gateway is verified by, besides the system's roots.
GATEWAY_CA_ENV = "TETHER_GATEWAY_CA"


class Unreachable(Exception):
    """Tether (the gateway, or Temporal behind it) did not answer."""


def request_id() -> str:
    """A random UUID (version 4) without importing uuid (which imports platform)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _read_chunked(data: bytes) -> bytes:
    out, rest = bytearray(), data
    while True:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out)
        out += rest[:size]
        rest = rest[size + 2 :]


def _bypassed(host: str) -> bool:
    """The host is in `no_proxy` (names, `.suffix`es, or `*`)."""
    listed = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    for entry in (e.strip().lower() for e in listed.split(",")):
        name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        if name == "*" or (
            name and (host == name.lstrip(".") or host.endswith("." + name.lstrip(".")))
        ):
            return True
    return False


def proxy_for(parts: SplitResult) -> tuple[str, int, str] | None:
    """(host, port, Proxy-Authorization or "") of the HTTP proxy to send `parts` through."""
    url = os.environ.get("http_proxy") or os.environ.get("HTTP_PROXY") or ""
    if not url or _bypassed((parts.hostname or "").lower()):
        return None
    proxy = urlsplit(url if "://" in url else f"http://{url}")
    if proxy.scheme != "http" or not proxy.hostname:
        return None
    auth = ""
    if proxy.username is not None:
        import base64  # only here: the hook outside a sandbox does not pay for it

        pair = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
        auth = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    return proxy.hostname, proxy.port or 80, auth


def http_request(
    method: str,
    url: str,
    body: bytes | None,
    timeout: float,
    headers: dict[str, str] | None = None,
    collect: str = "",
) -> tuple[int, bytes, list[str]]:
    """(status, body, the values of the response header `collect`) of one HTTP request;
    OSError when the server cannot be reached."""
    parts = urlsplit(url)
    extra = headers or {}
    if parts.scheme != "http":
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            url, data=body, method=method, headers={"Content-Type": "application/json", **extra}
        )
        context = None
        if os.environ.get(GATEWAY_CA_ENV):
            # A gateway whose certificate the system does not know (a cluster's own CA, or a
            # self-signed one): trusted besides the system's roots.
            import ssl

            context = ssl.create_default_context()
            context.load_verify_locations(cafile=os.environ[GATEWAY_CA_ENV])
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                found = response.headers.get_all(collect) or [] if collect else []
                return int(response.status), bytes(response.read()), list(found)
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read() or b""), []
        except urllib.error.URLError as exc:
            raise OSError(str(exc.reason)) from exc
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    through = proxy_for(parts)
    if through is not None:
        host, port, auth = through
        target = f"http://{parts.netloc}{target}"
        if auth:
            extra = {**extra, "Proxy-Authorization": auth}
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
        "Accept: application/json\r\n"
    )
    for name, value in extra.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise OSError(f"header {name} holds a line break")
        head += f"{name}: {value}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        conn.sendall(head.encode("latin-1") + b"\r\n" + (body or b""))
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    raw = b"".join(chunks)
    header, _, payload = raw.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError) as exc:
        raise OSError(f"not an HTTP answer: {lines[0][:80]!r}") from exc
    pairs = [(k.strip().lower(), v.strip()) for k, _, v in (ln.partition(":") for ln in lines[1:])]
    fields = dict(pairs)
    if "chunked" in fields.get("transfer-encoding", "").lower():
        payload = _read_chunked(payload)
    elif "content-length" in fields:
        payload = payload[: int(fields["content-length"])]
    found = [v for k, v in pairs if collect and k == collect.lower()]
    return status, payload, found


class Refused(Exception):
    """The workflow refused the request (an update validator, or an update that failed)."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        # The ApplicationError type, e.g. "SessionEnded".
        self.kind = kind


# A 404 from an update: the workflow closed (or never ran).
NOT_RUNNING = errors.NOT_RUNNING
