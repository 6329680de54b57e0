"""Temporal's HTTP API from the standard library: the hook must not pay for importing the
Temporal SDK on every tool call.

Plain `http://` (the loopback address of `tether up`, a cluster's frontend inside its network)
is spoken over a socket: one request per connection, `Connection: close`, a body of known
length or chunked, which is all Temporal's HTTP API answers with. Importing urllib.request
(and with it ssl, email and http.client) costs a hook more than the request itself on a slow
machine; `https://` still goes through urllib.request, imported only then.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tether.names import (
    SESSION_WORKFLOW,
)

QUERY_TIMEOUT = 5.0


_COMPLETED = "UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED"


_ACCEPTED = "UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED"


# Statuses that mean "not now" rather than "no": resource exhausted, unavailable, timeout.
_BUSY = (429, 503, 504)


class Unreachable(Exception):
    """Temporal's HTTP API did not answer."""


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


def http_request(method: str, url: str, body: bytes | None, timeout: float) -> tuple[int, bytes]:
    """(status, body) of one HTTP request; OSError when the server cannot be reached."""
    parts = urlsplit(url)
    if parts.scheme != "http":
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            url, data=body, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read() or b"")
        except urllib.error.URLError as exc:
            raise OSError(str(exc.reason)) from exc
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
        "Accept: application/json\r\n"
    )
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
    fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if "chunked" in fields.get("transfer-encoding", "").lower():
        payload = _read_chunked(payload)
    elif "content-length" in fields:
        payload = payload[: int(fields["content-length"])]
    return status, payload


class Refused(Exception):
    """The workflow refused the request (an update validator, or an update that failed)."""

    def __init__(self, message: str, kind: str = "") -> None:
        super().__init__(message)
        # The ApplicationError type, e.g. "SessionEnded".
        self.kind = kind


# A 404 from an update: the workflow closed (or never ran).
NOT_RUNNING = "NotRunning"


class TemporalHttp:
    def __init__(self, base: str, namespace: str) -> None:
        self.base = f"{base.rstrip('/')}/api/v1/namespaces/{quote(namespace, safe='')}"

    def _post(self, path: str, body: dict[str, Any], timeout: float) -> tuple[int, Any]:
        try:
            status, raw = http_request("POST", self.base + path, json.dumps(body).encode(), timeout)
        except OSError as exc:
            raise Unreachable(f"Temporal's HTTP API at {self.base} did not answer ({exc})") from exc
        try:
            answer = json.loads(raw or b"{}")
        except ValueError as exc:
            if status == 200:
                raise Unreachable(f"Temporal's HTTP API at {self.base}: {exc}") from exc
            answer = {}
        return status, answer if isinstance(answer, dict) else {}

    def query(self, workflow_id: str, name: str) -> Any | None:
        """The query's result; None when the workflow does not exist."""
        status, body = self._post(
            f"/workflows/{quote(workflow_id, safe='')}/query/{name}",
            {"query": {"queryType": name}},
            QUERY_TIMEOUT,
        )
        if status == 404:
            return None
        if status != 200:
            raise Unreachable(f"query {name} failed: HTTP {status} {body.get('message', '')}")
        result = body.get("queryResult") or [None]
        return result[0]

    def update(
        self,
        workflow_id: str,
        name: str,
        args: list[Any],
        timeout: float,
        wait_completed: bool = True,
        update_id: str | None = None,
    ) -> Any:
        """Run an update; its result when completed (None when only waiting for acceptance).
        The same `update_id` again is answered with the first outcome, not run twice."""
        update_id = update_id or request_id()
        body = {
            "request": {"meta": {"updateId": update_id}, "input": {"name": name, "args": args}},
            "waitPolicy": {"lifecycleStage": _COMPLETED if wait_completed else _ACCEPTED},
        }
        path = f"/workflows/{quote(workflow_id, safe='')}/update/{name}"
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Unreachable(f"update {name} did not finish within {timeout:g}s")
            try:
                status, answer = self._post(path, body, left)
            except Unreachable as exc:
                if isinstance(exc.__cause__, TimeoutError):
                    raise Unreachable(
                        f"update {name} did not finish within {timeout:g}s (is a Tether worker "
                        "running?)"
                    ) from exc
                raise
            if status == 404:
                raise Refused(answer.get("message") or "no such workflow", NOT_RUNNING)
            if status in _BUSY and deadline - time.monotonic() > pause:
                # Too many updates in flight (parallel tool calls), or the workflow is between
                # runs (continue-as-new): the same update id is asked again shortly.
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
                continue
            if status != 200:
                raise Unreachable(
                    f"update {name} failed: HTTP {status} {answer.get('message', '')}"
                )
            outcome = answer.get("outcome")
            if outcome is None:
                if not wait_completed:
                    return None
                continue  # still running: the same update id asks again for its outcome
            if "failure" in outcome:
                failure = outcome["failure"]
                info = failure.get("applicationFailureInfo") or {}
                raise Refused(failure.get("message") or "refused", str(info.get("type") or ""))
            result = outcome.get("success") or [None]
            return result[0]

    def start(self, workflow_id: str, task_queue: str, arg: dict[str, Any], summary: str) -> str:
        """Start the workflow, or find the one running with this id; its run id."""
        status, answer = self._post(
            f"/workflows/{quote(workflow_id, safe='')}",
            {
                "workflowType": {"name": SESSION_WORKFLOW},
                "taskQueue": {"name": task_queue},
                "input": [arg],
                "workflowIdReusePolicy": "WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE",
                "workflowIdConflictPolicy": "WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING",
                "userMetadata": {"summary": _json_payload(summary)},
                "requestId": request_id(),
            },
            QUERY_TIMEOUT,
        )
        if status != 200:
            raise Unreachable(
                f"starting {workflow_id} failed: HTTP {status} {answer.get('message')}"
            )
        return str(answer.get("runId") or "")

    def wait_closed(self, workflow_id: str, run_id: str, timeout: float) -> None:
        """Return once the run has closed (a long poll on its close event), or at `timeout`."""
        query = urlencode(
            {
                "execution.runId": run_id,
                "waitNewEvent": "true",
                "historyEventFilterType": "HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT",
            }
        )
        url = f"{self.base}/workflows/{quote(workflow_id, safe='')}/history?{query}"
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                status, raw = http_request("GET", url, None, left)
                events = json.loads(raw or b"{}").get("history", {}).get("events")
            except (OSError, ValueError, AttributeError) as exc:
                raise Unreachable(f"waiting for {workflow_id} to close: {exc}") from exc
            if status == 404:
                return
            if status != 200:
                raise Unreachable(f"waiting for {workflow_id} to close: HTTP {status}")
            if events:
                return


def _json_payload(value: Any) -> dict[str, Any]:
    """A payload spelled out (HTTP API shorthand covers inputs, not user metadata)."""

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(json.dumps(value).encode())}
