"""The one client factory: pydantic data converter and OpenTelemetry tracing, for every caller."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter

from tether.errors import TetherError
from tether.names import DEFAULT_NAMESPACE


async def connect(address: str, namespace: str = DEFAULT_NAMESPACE) -> Client:
    """A Temporal client that speaks Tether's contracts (pydantic) and propagates traces."""
    try:
        return await Client.connect(
            address,
            namespace=namespace,
            data_converter=pydantic_data_converter,
            interceptors=[TracingInterceptor()],
        )
    except RuntimeError as exc:
        raise TetherError(
            f"cannot reach Temporal at {address} ({exc}); start the stack with `tether up`, or "
            "set TEMPORAL_ADDRESS to a running server"
        ) from exc
