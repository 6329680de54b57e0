"""Process plumbing shared by the CLI and worker.py: logging, tracing, and a safe exit."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from tether.errors import TetherError

# Libraries whose INFO lines are theirs, not the founder's (httpx logs every request, Temporal's
# worker its shutdown): at WARNING unless asked for (`--verbose`, or TETHER_VERBOSE=1).
LIBRARY_LOGGERS = (
    "httpx",
    "httpcore",
    "urllib3",
    "asyncio",
    "uvicorn",
    "mcp",
    "temporalio.worker",
)


def setup_logging(level: int = logging.INFO, verbose: bool = False) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if not (verbose or os.environ.get("TETHER_VERBOSE") == "1"):
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        for handler in logging.getLogger().handlers:
            handler.addFilter(OutageInOneLine())


def setup_command_logging() -> None:
    """A command's terminal (every command but the servers): warnings and errors only, one line
    each, said by `tether:`. A request that waits says why this way ("still waiting: …").
    Configured before any library can: the `mcp` SDK configures the root logger at INFO when a
    server is made (the demo's gateway), and every HTTP request would be printed."""
    said = logging.StreamHandler(sys.stderr)
    said.setFormatter(logging.Formatter("tether: %(message)s"))
    said.addFilter(OutageInOneLine())
    root = logging.getLogger()
    root.addHandler(said)
    root.setLevel(logging.INFO if os.environ.get("TETHER_VERBOSE") == "1" else logging.WARNING)


class OutageInOneLine(logging.Filter):
    """A PostgreSQL outage as the libraries report it while they retry (asyncpg's pool keeping
    its connections, Temporal's worker failing an activity attempt with `StoreUnavailable`): one
    line saying what failed and why, not a traceback per attempt. TETHER_VERBOSE=1 keeps them."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and _outage(exc):
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {str(exc)[:300]}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def _outage(exc: BaseException) -> bool:
    from tether.errors import STORE_UNAVAILABLE
    from tether.store.connection import store_outage

    if store_outage(exc):
        return True
    return type(exc).__name__ == "ApplicationError" and getattr(exc, "type", None) == (
        STORE_UNAVAILABLE
    )


def setup_tracing(exporter: str | None, role: str = "cli") -> None:
    """Install an OpenTelemetry tracer provider; Temporal's TracingInterceptor (on every client,
    see tether.client) reports workflow, activity, signal, query and update spans into it.

    "console" prints spans to stderr; "otlp" sends them over OTLP/HTTP to the collector named by
    the standard OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)."""
    if exporter is None:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    span_exporter: SpanExporter
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        span_exporter = OTLPSpanExporter()
    else:
        span_exporter = ConsoleSpanExporter(out=sys.stderr)
    resource = Resource.create({"service.name": "tether", "tether.role": role})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)


def setup_metrics(bind: str | None) -> None:
    """Serve the Temporal SDK's metrics (workflow and activity counts and latencies, task
    queue polls, …) for Prometheus at http://BIND/metrics. Must run before any client connects:
    the metrics belong to the process-wide Temporal runtime."""
    if bind is None:
        return
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
    Runtime.set_default(runtime, error_if_already_set=False)
    logging.getLogger("tether.metrics").info("Temporal SDK metrics on http://%s/metrics", bind)


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
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:  # no tracer was set up in this process: nothing to flush
        return
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
    except BrokenPipeError:
        code = _BROKEN_PIPE
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        # The classes are looked up here: the read-only commands import neither pydantic nor
        # the Temporal SDK, and an error of a module not imported cannot have been raised.
        invalid = sys.modules.get("pydantic_core")
        rpc = sys.modules.get("temporalio.service")
        if invalid is not None and isinstance(exc, invalid.ValidationError):
            # Arguments the contracts refuse (an invalid agent or service name, say).
            from tether.config import describe_validation_error

            problem = describe_validation_error(exc, "this command's input")
            print(f"tether: {problem}", file=sys.stderr)
        elif rpc is not None and isinstance(exc, rpc.RPCError):
            # A request Temporal refused outright (too large, say): one line, what it said.
            print(f"tether: Temporal refused the request: {exc.message[:300]}", file=sys.stderr)
        else:
            raise
        code = 2
    _flush_tracing()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # `tether task list --json | head -1`: the reader left; as a shell tool ends.
        code = _BROKEN_PIPE
    sys.stderr.flush()
    os._exit(code)


# What a shell reports for a process ended by SIGPIPE (128 + 13).
_BROKEN_PIPE = 141


def die_with_parent() -> None:
    """In a child, before exec: SIGKILL when the thread that started it dies (Linux's
    PR_SET_PDEATHSIG), so a killed parent leaves no child running unwatched."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
