"""Temporal's HTTP API from the standard library: the hook must not pay for importing the
Temporal SDK on every tool call."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import quote, urlencode

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
        data = json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read() or b"{}")
            except ValueError:
                detail = {}
            return exc.code, detail
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(
                f"Temporal's HTTP API at {self.base} did not answer ({reason})"
            ) from exc

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
    ) -> Any:
        """Run an update; its result when completed (None when only waiting for acceptance)."""
        update_id = str(uuid.uuid4())
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
            status, answer = self._post(path, body, left)
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
                "requestId": str(uuid.uuid4()),
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
                with urllib.request.urlopen(url, timeout=left) as response:
                    events = json.loads(response.read() or b"{}").get("history", {}).get("events")
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    return
                raise Unreachable(f"waiting for {workflow_id} to close: HTTP {exc.code}") from exc
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise Unreachable(f"waiting for {workflow_id} to close: {exc}") from exc
            if events:
                return


def _json_payload(value: Any) -> dict[str, Any]:
    """A payload spelled out (HTTP API shorthand covers inputs, not user metadata)."""

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(json.dumps(value).encode())}
