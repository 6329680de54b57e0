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

Then the message's seal (tether/trust/seals.py) is checked against workflows/policy.py: a message
that changes state must be signed by a role allowed to send it, for this workflow, for the
agent it concerns, and not seen before. One that is not is refused: a signal is dropped, an
update fails with `Unauthorised`; both are counted in the memo (`tether_refused`, carried
across continue-as-new), logged, and written to the audit by an activity (`record_refusal`),
which `tether status` counts. Histories recorded before seals existed replay as they ran
(patch `sealed-messages`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
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

from tether.contracts import (
    Approval,
    FounderOrder,
    InboxItem,
    PasskeyApproval,
    PasskeyProof,
    RefusalRecord,
)
from tether.errors import INVALID_INPUT, UNAUTHORISED
from tether.names import (
    SESSION_WORKFLOW,
    SESSION_WORKFLOW_ID_PREFIX,
    TASK_WORKFLOW,
    TASK_WORKFLOW_ID_PREFIX,
)
from tether.trust import passkeys, seals
from workflows import policy
from workflows.messaging import founder_inbox, sealed_messages

MEMO_KEY = "tether_dropped"
REFUSED_KEY = "tether_refused"
SEEN_KEY = "tether_seals"
# How many founder-signed approvals and orders (by signature) a workflow remembers.
REMEMBERED_INNER = 64
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Shape:
    """What a handler takes: its positional parameters' names and types, how many are required."""

    names: tuple[str, ...]
    types: tuple[Any, ...]
    required: int
    varargs: bool


# The attribute `decodes` sets on a handler: the contract its raw argument is decoded into.
_DECODES = "__tether_decodes__"


def decodes(contract: type) -> Callable[[F], F]:
    """Mark a handler whose one argument arrives raw (`RawValue`) and is decoded here, by the
    guard, into `contract`. The SDK drops a signal whose argument does not decode before any
    interceptor sees it, without a trace; a founder's action must not be forgeable unseen, so
    such a message is refused here and audited like a forged one. The handler receives the
    decoded contract."""

    def mark(fn: F) -> F:
        setattr(fn, _DECODES, contract)
        return fn

    return mark


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
    decoded = getattr(fn, _DECODES, None)
    return _Shape(
        names=tuple(p.name for p in positional),
        types=(decoded,) if decoded else tuple(hints.get(p.name) for p in positional),
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


def _decode(fn: Any, args: Sequence[Any]) -> list[Any] | str | None:
    """For a handler marked with `decodes`: its raw argument decoded (a list of one), or why it
    is not one (a refusal); None for every other handler."""
    contract = getattr(fn, _DECODES, None) if fn is not None else None
    if contract is None:
        return None
    what = f"not {'an' if contract.__name__[0] in 'AEIOU' else 'a'} {contract.__name__}"
    if len(args) != 1:
        return f"it is {what}: it has {len(args)} arguments, not one"
    if not isinstance(args[0], RawValue):
        return None
    try:
        return [workflow.payload_converter().from_payload(args[0].payload, contract)]
    except Exception as exc:
        said = " ".join(str(exc).split())[:300]
        return f"it is {what} ({said})"


def _handler(kind: str, name: str) -> Any | None:
    definition = workflow._Definition.must_from_class(type(workflow.instance()))
    table = definition.signals if kind == "signal" else definition.updates
    found = table.get(name)
    return found.fn if found is not None else None


@dataclass
class _Seen:
    """What a workflow remembers to refuse replays: per signer instance, the last sequence
    numbers it accepted; the signatures of founder-signed approvals and orders it accepted; and
    when the workflow began (nothing signed long before can be meant for it)."""

    epoch: int = 0
    floor: int = 0
    signers: dict[str, list[int]] = field(default_factory=dict)
    inner: list[str] = field(default_factory=list)

    def dump(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "floor": self.floor,
            "signers": self.signers,
            "inner": self.inner,
        }

    @classmethod
    def load(cls, data: Any, epoch: int) -> _Seen:
        if not isinstance(data, dict):
            return cls(epoch=epoch)
        try:
            return cls(
                epoch=int(data.get("epoch") or epoch),
                floor=int(data.get("floor") or 0),
                signers={str(k): [int(x) for x in v] for k, v in data["signers"].items()},
                inner=[str(x) for x in data.get("inner") or []],
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return cls(epoch=epoch)

    def replayed(self, signer: str, seq: int, record: bool) -> str | None:
        if seq < self.epoch - seals.SKEW_US:
            return "it was signed before this workflow began (a replay)"
        seen = self.signers.get(signer)
        if seen is None and seq <= self.floor:
            return "it is older than what this workflow remembers of its signers (a replay)"
        if seen is not None:
            if seq in seen:
                return "it was already received (a replay)"
            if len(seen) >= seals.REMEMBERED_PER_SIGNER and seq < seen[0]:
                return "it is older than what this workflow remembers of its signer (a replay)"
        if record:
            seen = self.signers.pop(signer, None) or []
            seen.append(seq)
            seen.sort()
            del seen[: -seals.REMEMBERED_PER_SIGNER]
            self.signers[signer] = seen  # the most recently heard from last
            while len(self.signers) > seals.REMEMBERED_SIGNERS:
                oldest = next(iter(self.signers))
                self.floor = max(self.floor, *self.signers.pop(oldest))
        return None

    def inner_replayed(self, signature: str, record: bool) -> str | None:
        digest = hashlib.sha256(signature.encode()).hexdigest()[:32]
        if digest in self.inner:
            return "that signed approval or order was already received (a replay)"
        if record:
            self.inner.append(digest)
            del self.inner[:-REMEMBERED_INNER]
        return None


class _GuardOutbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, inbound: _GuardInbound) -> None:
        super().__init__(next)
        self._inbound = inbound

    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        # The counts and the replay memory travel on: the next run starts from them.
        carried: dict[str, Any] = {SEEN_KEY: self._inbound.seen.dump()}
        if self._inbound.dropped:
            carried[MEMO_KEY] = dict(self._inbound.dropped)
        if self._inbound.refused:
            carried[REFUSED_KEY] = dict(self._inbound.refused)
        input.memo = {**(input.memo or {}), **carried}
        super().continue_as_new(input)


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int)}


class _GuardInbound(WorkflowInboundInterceptor):
    # The public keys this worker trusts (set per MessageGuard).
    trust: ClassVar[seals.Trust] = seals.Trust()

    def __init__(self, next: WorkflowInboundInterceptor) -> None:
        super().__init__(next)
        self._loaded = False
        self._dropped: dict[str, int] = {}
        self._refused: dict[str, int] = {}
        self._seen = _Seen()

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_GuardOutbound(outbound, self))

    def _load(self) -> None:
        """What the previous run carried (memo), read on first use: a message can be handled
        in the first activation before the workflow's own code has started."""
        if self._loaded:
            return
        self._loaded = True
        self._dropped.update(_counts(workflow.memo_value(MEMO_KEY, default={})))
        self._refused.update(_counts(workflow.memo_value(REFUSED_KEY, default={})))
        started = int(workflow.info().start_time.timestamp()) * 1_000_000
        self._seen = _Seen.load(workflow.memo_value(SEEN_KEY, default=None), started)

    @property
    def dropped(self) -> dict[str, int]:
        self._load()
        return self._dropped

    @property
    def refused(self) -> dict[str, int]:
        self._load()
        return self._refused

    @property
    def seen(self) -> _Seen:
        self._load()
        return self._seen

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        self._load()
        return await super().execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        fn = _handler("signal", input.signal)
        undecodable = _decode(fn, input.args)
        if isinstance(undecodable, str):
            await self._refuse("signal", input.signal, undecodable, input.headers)
            return
        if undecodable is not None:
            input = dataclasses.replace(input, args=undecodable)
        problem = _misfit(fn, list(input.args)) if fn is not None else None
        if problem is not None:
            self.dropped[input.signal] = self.dropped.get(input.signal, 0) + 1
            workflow.logger.warning(
                "dropped signal %s: it %s (dropped so far: %s)",
                input.signal,
                problem,
                self.dropped,
            )
            workflow.upsert_memo({MEMO_KEY: dict(self.dropped)})
            return
        if sealed_messages():
            refused = self._unsealed(input.signal, input.args, input.headers, record=True)
            if refused is not None:
                await self._refuse("signal", input.signal, refused, input.headers)
                return
        await super().handle_signal(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        fn = _handler("update", input.update)
        problem = _misfit(fn, list(input.args)) if fn is not None else None
        if problem is not None:
            raise ApplicationError(
                f"update {input.update} {problem}", type=INVALID_INPUT, non_retryable=True
            )
        if sealed_messages():
            refused = self._unsealed(input.update, input.args, input.headers, record=True)
            if refused is not None:
                await self._refuse("update", input.update, refused, input.headers)
                raise ApplicationError(
                    f"{input.update} refused: {refused}; nothing changed. Agents reach Tether "
                    "through the gateway (their hooks, `tether` with TETHER_AGENT_TOKEN); the "
                    "founder's commands sign with the founder's key",
                    type=UNAUTHORISED,
                    non_retryable=True,
                )
        return await super().handle_update_handler(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        fn = _handler("update", input.update)
        problem = _misfit(fn, list(input.args)) if fn is not None else None
        if problem is not None:
            raise ApplicationError(
                f"update {input.update} {problem}", type=INVALID_INPUT, non_retryable=True
            )
        if self._unsealed(input.update, input.args, input.headers, record=False) is not None:
            # Admitted so that the handler refuses it where the refusal is counted and audited
            # (a validator may change nothing); the workflow's own validator is not asked.
            return
        super().handle_update_validator(input)

    # -- seals -----------------------------------------------------------------------------

    def _unsealed(self, name: str, args: Any, headers: Any, record: bool) -> str | None:
        """Why this message may not change this workflow's state; None when it may."""
        info = workflow.info()
        rule = policy.rule(info.workflow_type, name)
        if rule is None:
            return None
        args = list(args)
        raw = headers.get(seals.HEADER) if headers else None
        if raw is None:
            return self._inner(rule, name, args, record)
        try:
            seal = workflow.payload_converter().from_payload(raw, dict)
        except Exception:
            return "its seal is not a JSON object"
        if not isinstance(seal, dict):
            return "its seal is not a JSON object"
        problem = self.trust.check(seal, info.workflow_id, name, args)
        if problem is not None:
            return problem
        role = str(seal["role"])
        if role != policy.FOUNDER and role not in rule.roles:
            allowed = " or the ".join(["founder", *sorted(rule.roles)])
            return f"the {role} may not send {name}; only the {allowed} may"
        if role == policy.GATEWAY:
            problem = self._speaks_for(rule, info.workflow_id, seal, args)
            if problem is not None:
                return problem
        return self.seen.replayed(str(seal["signer"]), int(seal["seq"]), record)

    @staticmethod
    def _speaks_for(
        rule: policy.Rule, workflow_id: str, seal: dict[str, Any], args: list[Any]
    ) -> str | None:
        agent = seal.get("agent")
        wanted: Any
        if rule.agent_from == "workflow":
            wanted = workflow_id.removeprefix(SESSION_WORKFLOW_ID_PREFIX)
        elif rule.agent_from == "arg" and args:
            wanted = getattr(args[0], "agent", None)
        else:
            return "the gateway may not send it"
        if not agent or agent != wanted:
            return f"it was sealed for agent {agent!r}, not {wanted!r}"
        if rule.session_field and args:
            carried = getattr(args[0], rule.session_field, None) or None
            sealed = seal.get("session") or None
            if carried != sealed:
                return f"it was sealed for runtime session {sealed!r}, but speaks for {carried!r}"
        return None

    def _inner(self, rule: policy.Rule, name: str, args: list[Any], record: bool) -> str | None:
        """A founder-signed approval or order inside the message counts as the founder's seal
        (the Web UI's path), for this workflow's subject, unexpired, once."""
        others = "".join(f" or the {role}" for role in sorted(rule.roles))
        unsealed = f"it is not sealed (only the founder{others} may send {name})"
        if rule.inner is None or not args:
            return unsealed
        info = workflow.info()
        if rule.inner == "passkey":
            return self._passkey(args[0], record)
        item: Approval | FounderOrder | None
        if rule.inner == "approval":
            item = args[0] if isinstance(args[0], Approval) else None
            if item is not None and item.deployment_id != info.workflow_id:
                return f"the approval is for {item.deployment_id}, not {info.workflow_id}"
        else:
            item = getattr(args[0], "order", None)
            if not isinstance(item, FounderOrder):
                return unsealed
            subject = _subject(info.workflow_type, info.workflow_id)
            if item.action not in rule.order_actions or item.subject != subject:
                return (
                    f"the order is to {item.action} {item.subject}, not to "
                    f"{'/'.join(rule.order_actions)} {subject}"
                )
        if isinstance(item, FounderOrder) and item.passkey is not None:
            # Signed on the founder's device: the enrolled passkey's assertion over its digest.
            if item.expires_at <= workflow.now():
                return "the signed approval or order has expired"
            return self._passkey_signed(item.passkey, item.payload(), record)
        if item is None or not item.signature:
            return unsealed
        if item.expires_at <= workflow.now():
            return "the signed approval or order has expired"
        if not self._founder_signed(item):
            return "the approval or order is not signed with the founder's key"
        return self.seen.inner_replayed(item.signature, record)

    def _passkey(self, proof: Any, record: bool) -> str | None:
        """An approval signed on the founder's device with a passkey the founder's key enrolled:
        for this deployment, unexpired, verified here (tether/trust/passkeys.py), once."""
        if not isinstance(proof, PasskeyApproval):
            return "it is not an approval signed with the founder's passkey"
        info = workflow.info()
        if proof.approval.deployment_id != info.workflow_id:
            return f"the approval is for {proof.approval.deployment_id}, not {info.workflow_id}"
        if proof.approval.expires_at <= workflow.now():
            return "the signed approval or order has expired"
        return self._passkey_signed(proof, proof.approval.payload(), record)

    def _passkey_signed(
        self, proof: PasskeyApproval | PasskeyProof, payload: bytes, record: bool
    ) -> str | None:
        """The founder's enrolled passkey signed exactly `payload`, and not before (a replay)."""
        founder = self.trust.keys.get(policy.FOUNDER) or ()
        challenge = passkeys.challenge_of(payload)
        problem = passkeys.verify(proof.enrollment, proof.assertion, challenge, founder)
        return problem or self.seen.inner_replayed(proof.assertion.signature, record)

    def _founder_signed(self, item: Approval | FounderOrder) -> bool:
        founder = self.trust.keys.get(policy.FOUNDER) or ()
        return seals.signed_by(item.signature, item.payload(), founder) is None

    async def _refuse(self, kind: str, name: str, reason: str, headers: Any) -> None:
        self.refused[name] = self.refused.get(name, 0) + 1
        seal: dict[str, Any] = {}
        raw = headers.get(seals.HEADER) if headers else None
        if raw is not None:
            try:
                decoded = workflow.payload_converter().from_payload(raw, dict)
                seal = decoded if isinstance(decoded, dict) else {}
            except Exception:
                seal = {}
        workflow.logger.warning(
            "refused %s %s: %s (sender %s; refused so far: %s)",
            kind,
            name,
            reason,
            seals.describe(seal) if seal else "unsealed",
            self.refused,
        )
        workflow.upsert_memo({REFUSED_KEY: dict(self.refused)})
        info = workflow.info()
        record = RefusalRecord(
            workflow_id=info.workflow_id,
            workflow_type=info.workflow_type,
            handler=name,
            kind="signal" if kind == "signal" else "update",
            reason=reason[:500],
            role=_text(seal.get("role")),
            signer=_text(seal.get("signer")),
            agent=_text(seal.get("agent")),
            at=workflow.now(),
        )
        # Awaited, so that the workflow finishes its handlers (the audit with them) before it
        # continues as new or completes. A store that stays down loses the row, not the refusal.
        if not await _audited("record_refusal", record):
            workflow.logger.warning("the refusal of %s %s was not audited", kind, name)
        rule = policy.rule(info.workflow_type, name)
        if rule is None or rule.roles or not founder_inbox():
            return
        # A founder's own action refused: the founder sees it (one item a day per message and
        # workflow: a flood of forgeries is counted, not a flood in the inbox).
        day = workflow.now().date().isoformat()
        item = InboxItem(
            key=f"refused:{info.workflow_id}:{name}:{day}",
            kind="founder_action_refused",
            subject=info.workflow_id,
            title=f"A founder's {name} for {info.workflow_id} was refused: {reason[:200]}",
            detail={
                "sender": seals.describe(seal) if seal else "unsealed",
                "refused so far": self.refused[name],
                "see": "tether status (refused messages)",
            },
        )
        if not await _audited("notify_founder", item):
            workflow.logger.warning("the founder was not told of the refused %s", name)


async def _audited(activity: str, arg: Any) -> bool:
    """Run one of the guard's activities (by name: the guard serves every workflow), retried
    a few times; False when it did not land (a store that stays down loses the row, not the
    refusal)."""
    retry = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=10))
    try:
        await workflow.execute_activity(
            activity, arg, start_to_close_timeout=timedelta(seconds=30), retry_policy=retry
        )
    except ActivityError:
        return False
    return True


def _text(value: Any) -> str | None:
    return str(value)[:200] if value else None


def _subject(workflow_type: str, workflow_id: str) -> str:
    if workflow_type == TASK_WORKFLOW:
        return workflow_id.removeprefix(TASK_WORKFLOW_ID_PREFIX)
    if workflow_type == SESSION_WORKFLOW:
        return workflow_id.removeprefix(SESSION_WORKFLOW_ID_PREFIX)
    return workflow_id


class MessageGuard(Interceptor):
    """The worker interceptor: every workflow's signals and updates are checked first, their
    seals against `trust` (the public keys this worker accepts)."""

    def __init__(self, trust: seals.Trust | None = None) -> None:
        self._class = type("_SealGuard", (_GuardInbound,), {"trust": trust or seals.Trust()})

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return self._class
