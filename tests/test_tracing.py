"""The client factory installs OpenTelemetry tracing: workflows and activities report spans."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.worker import Worker

from tether import client as api
from tether.contracts import ShellCheck, TaskSpec


async def test_task_lifecycle_is_traced(client: Client, worker: Worker, task_id: str) -> None:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    spec = TaskSpec(id=task_id, title="traced", checks=[ShellCheck(command="true")])
    await api.create_task(client, worker.task_queue, spec)
    await api.claim_task(client, task_id, "coder")
    assert (await api.submit_task(client, task_id, "coder", None)).done

    names = {span.name for span in exporter.get_finished_spans()}
    assert "StartUpdateWithStartWorkflow:TaskWorkflow" in names
    assert "StartWorkflowUpdate:submit" in names
    assert "RunActivity:run_check" in names and "RunActivity:record_task" in names
