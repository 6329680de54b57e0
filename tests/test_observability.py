"""Observability by configuration: worker.py with TETHER_OTEL_EXPORTER=otlp sends the Temporal
tracing interceptor's spans to a real OTLP/HTTP receiver on 127.0.0.1, and with
TETHER_METRICS_BIND serves the Temporal SDK's metrics for Prometheus."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from temporalio.client import Client

from tests.support import keys
from tests.support.cli import tether
from tests.support.helpers import eventually
from tether.ops.loopback import LoopbackServer, QuietHandler
from tether.ops.stack import free_port

ROOT = Path(__file__).resolve().parent.parent


class OtlpReceiver:
    """The receiving end of OTLP/HTTP (protobuf): what a collector gets on /v1/traces."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.paths.append(self.path)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    attrs = {
                        a.key: a.value.string_value for a in resource_spans.resource.attributes
                    }
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            receiver.spans.append(
                                {
                                    "name": span.name,
                                    "trace": span.trace_id.hex(),
                                    "id": span.span_id.hex(),
                                    "parent": span.parent_span_id.hex(),
                                    "resource": attrs,
                                }
                            )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._http = LoopbackServer(Handler)
        self.url = self._http.url
        self.stop = self._http.stop


async def test_worker_exports_traces_over_otlp_and_serves_prometheus_metrics(
    client: Client, temporal_address: str, fresh_db: str, tmp_path: Path
) -> None:
    receiver = OtlpReceiver()
    queue = f"otel-{uuid.uuid4().hex[:8]}"
    bind = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "TETHER_"))}
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    env.update(
        TEMPORAL_ADDRESS=temporal_address,
        DATABASE_URL=fresh_db,
        TETHER_TASK_QUEUE=queue,
        TETHER_HOME=str(keys.write(tmp_path)),
        TETHER_OTEL_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_BSP_SCHEDULE_DELAY="200",
        TETHER_METRICS_BIND=bind,
    )
    log = tmp_path / "worker.log"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "worker.py"),
        env=env,
        stdout=log.open("w"),
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        await eventually(lambda: "worker polling" in log.read_text(), "the worker", 30)

        # The founder's commands trace too (same exporter settings): each command's span is
        # the parent of what the worker does for it.
        task_id = f"otel-{uuid.uuid4().hex[:8]}"
        for args in (
            ["task", "create", "--id", task_id, "--title", "traced", "--shell", "echo ok"],
            ["task", "claim", task_id, "--agent", "coder"],
            ["task", "submit", task_id, "--agent", "coder"],
        ):
            run = await tether(env, *args)
            assert run.code == 0, run.err

        # Prometheus text format, from the Temporal runtime of the worker process.
        async with httpx.AsyncClient() as http:

            async def scraped() -> str | None:
                text = (await http.get(f"http://{bind}/metrics")).text
                return text if "temporal_activity_execution_latency" in text else None

            metrics = await eventually(scraped, "activity metrics")
        assert "# TYPE temporal_workflow_task_execution_latency" in metrics
        assert f'task_queue="{queue}"' in metrics
        assert 'activity_type="run_check"' in metrics

        await eventually(
            lambda: (
                {"RunActivity:run_check", "RunActivity:record_task"}
                <= {s["name"] for s in receiver.spans}
            ),
            "the worker's activity spans",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=60)
        receiver.stop()
    assert code == 0, log.read_text()[-2000:]

    assert set(receiver.paths) == {"/v1/traces"}
    spans = receiver.spans
    names = {s["name"] for s in spans}
    expected = {
        "StartUpdateWithStartWorkflow:TaskWorkflow",
        "RunWorkflow:TaskWorkflow",
        "StartActivity:run_check",
        "RunActivity:run_check",
        "RunActivity:record_task",
    }
    assert expected <= names, sorted(names)
    assert all(s["resource"].get("service.name") == "tether" for s in spans)
    assert {s["resource"].get("tether.role") for s in spans} == {"cli", "worker"}
    # One trace runs from the founder's `tether task create` to the check the worker ran for the
    # task (the workflow schedules it from its run, whose parent is the CLI's start).
    run_check = next(s for s in spans if s["name"] == "RunActivity:run_check")
    trace = [s for s in spans if s["trace"] == run_check["trace"]]
    roots = [s for s in trace if not s["parent"]]
    assert len(roots) == 1 and roots[0]["resource"]["tether.role"] == "cli", trace
    assert roots[0]["name"] == "StartUpdateWithStartWorkflow:TaskWorkflow", roots[0]
    assert {"RunWorkflow:TaskWorkflow", "StartActivity:run_check"} <= {s["name"] for s in trace}
