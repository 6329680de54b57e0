"""Process plumbing shared by the CLI and worker.py: logging, tracing, and a safe exit."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from tether.errors import TetherError


def setup_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def setup_tracing(exporter: str | None) -> None:
    """Install an OpenTelemetry tracer provider; Temporal's TracingInterceptor reports into it."""
    if exporter is None:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "tether"}))
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    trace.set_tracer_provider(provider)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM: long-running commands stop cleanly on either."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def mask_url(url: str) -> str:
    """A URL fit for a terminal or a log: any password replaced."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _flush_tracing() -> None:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()


def run_and_exit(main: Coroutine[Any, Any, int]) -> NoReturn:
    """Run `main`, then end the process without interpreter finalisation.

    Temporal's native threads can crash the interpreter while it finalises (temporalio/sdk-python
    #300), turning a success into a segfault. Every Temporal object is closed inside `main`'s
    event loop; after that, output is flushed and the process exits with the real status.
    """
    try:
        code = asyncio.run(main)
    except TetherError as exc:
        print(f"tether: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    _flush_tracing()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
