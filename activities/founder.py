"""The founder's orders: a governor's hold (a loop block, a cost pause) is lifted only by an
order signed with the founder's Ed25519 key, judged here against the public key in the worker's
tether.toml — never against anything the workflow input or the sender supplies."""

from __future__ import annotations

from temporalio import activity

from activities.escalation import escalating
from activities.standing import passkey_standing
from tether.config import TetherConfig
from tether.contracts import JudgeOrderInput, OrderVerdict
from tether.store import Store
from tether.trust.signing import verify


class FounderActivities:
    def __init__(self, store: Store, config: TetherConfig) -> None:
        self.store = store
        self.config = config

    @activity.defn
    @escalating
    async def judge_order(self, inp: JudgeOrderInput) -> OrderVerdict:
        """Accept only an unexpired order the founder's key signed, for one of the expected
        actions on this subject. Every verdict is logged (`founder_orders`)."""
        verdict = self._judge(inp)
        order = verdict.order
        if verdict.accepted and order is not None and order.passkey is not None:
            proof = order.passkey
            standing = await passkey_standing(self.store, proof.enrollment.credential_id)
            name = proof.enrollment.name or "unnamed"
            verdict = (
                OrderVerdict(accepted=False, reason=standing, order=order)
                if standing is not None
                else OrderVerdict(
                    accepted=True,
                    reason=f"signed on the founder's device (passkey {name!r})",
                    order=order,
                )
            )
        await self.store.log_order(
            order.action if order else "?",
            inp.subject,
            order.by if order and verdict.accepted else "unverified",
            verdict.accepted,
            verdict.reason,
            inp.judged_for,
        )
        return verdict

    def _judge(self, inp: JudgeOrderInput) -> OrderVerdict:
        order = inp.received
        if order is None:
            return OrderVerdict(
                accepted=False,
                reason="no founder-signed order came with it (sign one with the founder's key: "
                "the tether command does when $TETHER_HOME/founder.key exists)",
            )
        problem = verify(order, self.config.founder.key_text())
        if problem is None:
            if order.action not in inp.actions or order.subject != inp.subject:
                problem = (
                    f"the signed order is to {order.action} {order.subject}, not to "
                    f"{' or '.join(inp.actions)} {inp.subject}"
                )
            elif order.expires_at <= inp.at:
                problem = f"the order expired at {order.expires_at:%Y-%m-%d %H:%M:%S} UTC"
        if problem is not None:
            return OrderVerdict(accepted=False, reason=problem, order=order)
        return OrderVerdict(accepted=True, reason="signed by the founder's key", order=order)
