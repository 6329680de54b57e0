"""No message can jam a workflow: a worker interceptor that checks every signal and update
against its handler before the handler runs.

Temporal decodes a message's arguments with the handler's type hints only when their number
matches; otherwise it passes what it decoded as plain values and the handler's call fails with
a TypeError, which fails the workflow task, which Temporal retries for ever (every later query
and update then answers "Workflow Task in failed state"). Anyone who can reach Temporal can send
such a message (`temporal workflow signal` with no input, or two).

So, before a handler runs:
- a signal whose arguments do not fit is dropped, logged, and counted in the workflow's memo
  (`tether_dropped`, per signal name, carried across continue-as-new; a drop that lands while
  a run is already continuing stays in that run's memo; the sender's identity is on the
  signal's history event, in the Web UI);
- an update whose arguments do not fit fails with InvalidInput, naming what was expected
  (a validator would reject it the same way; this also covers updates without one).
Arguments of the right number were already decoded into the declared types (or the message was
dropped or rejected by the SDK itself when they did not decode).
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import Any, NoReturn

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ContinueAsNewInput,
    ExecuteWorkflowInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from tether.errors import INVALID_INPUT

MEMO_KEY = "tether_dropped"


@dataclass(frozen=True)
class _Shape:
    """What a handler takes: its positional parameters' names and types, how many are required."""

    names: tuple[str, ...]
    types: tuple[Any, ...]
    required: int
    varargs: bool


@functools.cache
def _shape(fn: Any) -> _Shape:
    """Read once per handler (every report passes here, on the hot path)."""
    try:
        hints = inspect.get_annotations(fn, eval_str=True)
    except Exception:  # an annotation that does not evaluate: check the count only
        hints = {}
    params = list(inspect.signature(fn).parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return _Shape(
        names=tuple(p.name for p in positional),
        types=tuple(hints.get(p.name) for p in positional),
        required=sum(p.default is p.empty for p in positional),
        varargs=any(p.kind == p.VAR_POSITIONAL for p in params),
    )


def _misfit(fn: Any, args: list[Any]) -> str | None:
    """Why these arguments cannot be passed to this handler, or None when they can."""
    shape = _shape(fn)
    if shape.varargs:
        return None
    if not shape.required <= len(args) <= len(shape.names):
        most = len(shape.names)
        expected = f"{most}" if shape.required == most else f"{shape.required} to {most}"
        names = ", ".join(
            f"{name}: {getattr(kind, '__name__', kind)}"
            for name, kind in zip(shape.names, shape.types, strict=True)
        )
        return f"takes {expected} argument(s) ({names}), not {len(args)}"
    for i, (name, wanted, arg) in enumerate(zip(shape.names, shape.types, args, strict=False)):
        if isinstance(wanted, type) and wanted is not Any and not isinstance(arg, wanted):
            return f"takes a {wanted.__name__} as argument {i + 1} ({name})"
    return None


def _handler(kind: str, name: str) -> Any | None:
    definition = workflow._Definition.must_from_class(type(workflow.instance()))
    table = definition.signals if kind == "signal" else definition.updates
    found = table.get(name)
    return found.fn if found is not None else None


class _GuardOutbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, dropped: dict[str, int]) -> None:
        super().__init__(next)
        self._dropped = dropped

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        # The count travels on: the next run's memo starts from it.
        if self._dropped:
            input.memo = {**(input.memo or {}), MEMO_KEY: dict(self._dropped)}
        super().continue_as_new(input)


class _GuardInbound(WorkflowInboundInterceptor):
    def __init__(self, next: WorkflowInboundInterceptor) -> None:
        super().__init__(next)
        self._dropped: dict[str, int] = {}

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_GuardOutbound(outbound, self._dropped))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        carried = workflow.memo_value(MEMO_KEY, default={})
        if isinstance(carried, dict):
            self._dropped.update({str(k): int(v) for k, v in carried.items()})
        return await super().execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        fn = _handler("signal", input.signal)
        problem = _misfit(fn, list(input.args)) if fn is not None else None
        if problem is not None:
            self._dropped[input.signal] = self._dropped.get(input.signal, 0) + 1
            workflow.logger.warning(
                "dropped signal %s: it %s (dropped so far: %s)",
                input.signal,
                problem,
                self._dropped,
            )
            workflow.upsert_memo({MEMO_KEY: dict(self._dropped)})
            return
        await super().handle_signal(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        fn = _handler("update", input.update)
        problem = _misfit(fn, list(input.args)) if fn is not None else None
        if problem is not None:
            raise ApplicationError(
                f"update {input.update} {problem}", type=INVALID_INPUT, non_retryable=True
            )
        return await super().handle_update_handler(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        fn = _handler("update", input.update)
        problem = _misfit(fn, list(input.args)) if fn is not None else None
        if problem is not None:
            raise ApplicationError(
                f"update {input.update} {problem}", type=INVALID_INPUT, non_retryable=True
            )
        super().handle_update_validator(input)


class MessageGuard(Interceptor):
    """The worker interceptor: every workflow's signals and updates are checked first."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _GuardInbound
