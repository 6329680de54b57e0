"""The one client factory: pydantic data converter, OpenTelemetry tracing and, for a caller that
holds a key, the seal on every message it sends (tether/trust/seals.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    SignalWorkflowInput,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowUpdateHandle,
)
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

from tether.errors import TetherError
from tether.names import DEFAULT_NAMESPACE
from tether.trust import seals


class _SealingOutbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, signer: seals.Signer) -> None:
        super().__init__(next)
        self._signer = signer
        self._converter = pydantic_data_converter.payload_converter

    def _header(self, headers: Any, workflow_id: str, handler: str, args: Any) -> dict[str, Any]:
        seal = self._signer.seal(workflow_id, handler, list(args), seals.speaking_for.get())
        return {**headers, seals.HEADER: self._converter.to_payloads([seal])[0]}

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        input.headers = self._header(input.headers, input.id, input.signal, input.args)
        await super().signal_workflow(input)

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        input.headers = self._header(input.headers, input.id, input.update, input.args)
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        update, start = input.update_workflow_input, input.start_workflow_input
        update.headers = self._header(update.headers, start.id, update.update, update.args)
        return await super().start_update_with_start_workflow(input)


class Sealing(Interceptor):
    """Seals every signal and update the client sends with `signer`'s key; the agent a gateway
    speaks for comes from `tether.trust.seals.speaking(...)` around the call."""

    def __init__(self, signer: seals.Signer) -> None:
        self.signer = signer

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _SealingOutbound(next, self.signer)


def founder_signer(path: str | Path | None = None) -> seals.Signer:
    """The founder's signer, from `path` or $TETHER_HOME/founder.key (`tether keygen`, or made
    by `tether up`): what the founder's own scripts seal their messages with."""
    from tether.trust.keys import key_path, load_private

    home = Path(os.environ.get("TETHER_HOME") or Path.home() / ".tether").expanduser()
    key_file = Path(path).expanduser() if path else key_path(home, "founder")
    return seals.Signer("founder", load_private(key_file, "founder"))


def _interceptors(signer: seals.Signer | None) -> list[Interceptor]:
    found: list[Interceptor] = [TracingInterceptor()]
    if signer is not None:
        found.append(Sealing(signer))
    return found


def cloud_options(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`Client.connect` options for TLS and an API key, from the environment (the variables
    tether.config.CLOUD_VARIABLES names): an API key alone
    means TLS (Temporal Cloud); client certificate and key files mean mTLS. Nothing set: a
    plain connection, as to `tether up`'s dev server."""
    env = os.environ if env is None else env
    options: dict[str, Any] = {}
    api_key = (env.get("TEMPORAL_API_KEY") or "").strip()
    if api_key:
        options["api_key"] = api_key
    cert, key = env.get("TEMPORAL_TLS_CLIENT_CERT_PATH"), env.get("TEMPORAL_TLS_CLIENT_KEY_PATH")
    if bool(cert) != bool(key):
        raise TetherError(
            "mTLS needs both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH"
        )
    ca, server = env.get("TEMPORAL_TLS_SERVER_CA_CERT_PATH"), env.get("TEMPORAL_TLS_SERVER_NAME")
    wanted = (env.get("TEMPORAL_TLS") or "").strip().lower()
    if wanted in ("0", "false", "no", "off") and (cert or ca or api_key):
        raise TetherError("TEMPORAL_TLS is off, but an API key or certificates are set for TLS")
    if cert or ca or server or api_key or wanted in ("1", "true", "yes", "on"):
        if cert or ca or server:
            options["tls"] = TLSConfig(
                client_cert=_read(cert, "TEMPORAL_TLS_CLIENT_CERT_PATH"),
                client_private_key=_read(key, "TEMPORAL_TLS_CLIENT_KEY_PATH"),
                server_root_ca_cert=_read(ca, "TEMPORAL_TLS_SERVER_CA_CERT_PATH"),
                domain=server or None,
            )
        else:
            options["tls"] = True
    return options


def _read(path: str | None, name: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise TetherError(f"{name}={path}: {exc.strerror or exc}") from exc


async def connect(
    address: str, namespace: str = DEFAULT_NAMESPACE, signer: seals.Signer | None = None
) -> Client:
    """A Temporal client that speaks Tether's contracts (pydantic), propagates traces and, with
    `signer`, seals what it sends; over TLS and with an API key when the environment says so
    (`cloud_options`)."""
    options = cloud_options()
    try:
        return await Client.connect(
            address,
            namespace=namespace,
            data_converter=pydantic_data_converter,
            interceptors=_interceptors(signer),
            **options,
        )
    except RuntimeError as exc:
        raise TetherError(
            f"cannot reach Temporal at {address} ({exc}); start the stack with `tether up`, or "
            "set TEMPORAL_ADDRESS to a running server"
        ) from exc


def sealed(client: Client, signer: seals.Signer) -> Client:
    """The same connection, sealing what it sends with `signer` (and nothing else's seal)."""
    config = client.config()
    kept = [i for i in config["interceptors"] if not isinstance(i, Sealing)]
    config["interceptors"] = [*kept, Sealing(signer)]
    return Client(**config)


def unsealed(client: Client) -> Client:
    """The same connection, sealing nothing: for messages that carry their own proof (an
    approval signed on the founder's device), which a seal would have to be allowed to send."""
    config = client.config()
    config["interceptors"] = [i for i in config["interceptors"] if not isinstance(i, Sealing)]
    return Client(**config)
