"""The founder's cockpit on the gateway (`/founder`), issue 30: pages rendered on the server, a
little inline script for the passkey ceremonies, no build step.

- `/founder/register/{token}`: the one-time link `tether founder passkey add` prints; the
  browser creates a passkey (ES256, the user verified) and the gateway verifies the
  registration (py_webauthn). The gateway never enrolls it: the founder's command signs the
  enrollment with the founder's key once the registration lands, so the gateway holds nothing
  that can make a passkey the founder's.
- `/founder`: sign in with an enrolled passkey (a session cookie, HttpOnly, SameSite=Strict,
  that can read, never act), then the inbox, each deployment waiting for approval linked.
- `/founder/deployments/{id}`: the deployment, and "Approve with passkey": the page asks for
  the approval to sign, the passkey signs its digest on the founder's device, and the workflow
  verifies the assertion itself (approve_by_passkey), sent with a client that seals nothing.

Sign-in challenges and sessions live in this gateway process (a second gateway behind a load
balancer would need them shared).
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import math
import secrets
import shlex
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client

from tether import limits
from tether.client import deployments as deploy_api
from tether.client.calls import Refused
from tether.config import TetherConfig
from tether.contracts import (
    DeployView,
    FounderOrder,
    InboxItem,
    PasskeyApproval,
    PasskeyAssertion,
    PasskeyProof,
)
from tether.errors import TetherError
from tether.store import Store
from tether.trust import passkey_tags, passkeys, tags
from tether.trust.passkey_tags import b64url
from tether.trust.seals import parse_public

COOKIE = "tether_founder"
SESSION_SECONDS = 12 * 3600
CHALLENGE_SECONDS = 120
MAX_CHALLENGES = 1000
# At most one audit entry per kind of refused cockpit attempt this often; the rest are counted.
REFUSAL_AUDIT_SECONDS = 10.0
# How often the live inbox looks for new items.
LIVE_SECONDS = 2.0


@dataclass
class Cockpit:
    store: Store
    client: Client  # seals nothing: a passkey's proof is in the message
    config: TetherConfig
    # The gateway's own client (its seal speaks for an agent): for what an agent may ask of
    # its own session, a credential's recheck.
    sealed: Client | None = None
    sessions: dict[str, float] = field(default_factory=dict)
    challenges: dict[str, float] = field(default_factory=dict)
    # Refusals audited per kind: when the last was, and how many came since (agents reach the
    # gateway: a flood of made-up sign-ins is counted, not an audit entry each).
    refusals: dict[str, tuple[float, int]] = field(default_factory=dict)

    def signed_in(self, request: Request) -> bool:
        token = request.cookies.get(COOKIE, "")
        return bool(token) and self.sessions.get(token, 0) > time.monotonic()

    def new_challenge(self) -> bytes | None:
        """A sign-in challenge, or None while too many are outstanding (anyone who reaches the
        gateway may ask for one)."""
        now = time.monotonic()
        self.challenges = {c: t for c, t in self.challenges.items() if t > now}
        if len(self.challenges) >= MAX_CHALLENGES:
            return None
        challenge = secrets.token_bytes(32)
        self.challenges[b64url(challenge)] = now + CHALLENGE_SECONDS
        return challenge

    def take_challenge(self, encoded: str) -> bytes | None:
        expires = self.challenges.pop(encoded, 0)
        return passkeys.unpadded(encoded) if expires > time.monotonic() else None


def _origin(request: Request) -> tuple[str, str]:
    """(origin, relying party id) as the browser sees this page."""
    host = request.headers.get("host") or request.url.netloc
    return f"{request.url.scheme}://{host}", urlsplit(f"//{host}").hostname or host


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Tether</title>
<style>
body{{font:16px/1.45 system-ui,sans-serif;margin:0;padding:1rem;max-width:40rem;color:#111}}
h1{{font-size:1.3rem}} .item{{border:1px solid #ccc;border-radius:8px;padding:.7rem;margin:.6rem 0}}
button{{font-size:1.05rem;padding:.7rem 1.1rem;border-radius:8px;border:0;background:#1f6feb;
color:#fff;width:100%}} .muted{{color:#555;font-size:.9rem}}
#said{{margin-top:1rem;font-weight:600}} code{{word-break:break-all}}
</style></head><body><h1>{title}</h1>{body}<div id="said"></div>
<script>
const b64u = b => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\\+/g,'-')
  .replace(/\\//g,'_').replace(/=+$/,'');
const unb64u = s => Uint8Array.from(atob(s.replace(/-/g,'+').replace(/_/g,'/')
  + '==='.slice((s.length+3)%4)), c => c.charCodeAt(0));
const said = t => document.getElementById('said').textContent = t;
async function post(url, body) {{
  const r = await fetch(url, {{method:'POST', headers:{{'content-type':'application/json'}},
    body: JSON.stringify(body || {{}}), credentials:'same-origin'}});
  const answer = await r.json(); if (!r.ok) throw new Error(answer.error || r.status);
  return answer;
}}
async function assertion(challenge, ids) {{
  const c = await navigator.credentials.get({{publicKey: {{challenge: unb64u(challenge),
    allowCredentials: ids.map(id => ({{type:'public-key', id: unb64u(id)}})),
    userVerification:'required', timeout: 60000}}}});
  return {{credential_id: c.id, authenticator_data: b64u(c.response.authenticatorData),
    client_data_json: b64u(c.response.clientDataJSON), signature: b64u(c.response.signature)}};
}}
{script}
</script></body></html>"""


def page(title: str, body: str, script: str = "", status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), body=body, script=script), status)


SIGN_IN = """
async function signIn() {
  try { const c = await post('/founder/login/challenge');
        await post('/founder/login', await assertion(c.challenge, c.credentials));
        location.reload(); } catch (e) { said('Not signed in: ' + e.message); }
}"""


def _sign_in_page() -> HTMLResponse:
    body = (
        "<p>Sign in with the passkey you enrolled "
        "(<code>tether founder passkey add</code>).</p>"
        '<button id="signin" onclick="signIn()">Sign in with passkey</button>'
    )
    return page("Tether: the founder's cockpit", body, SIGN_IN, 401)


def routes(cockpit: Cockpit) -> list[Route]:
    async def register_page(request: Request) -> Response:
        token = request.path_params["token"]
        invite = await cockpit.store.open_invite(token)
        if invite is None:
            return page("Link expired", "<p>This link was used or has expired.</p>", status=404)
        body = (
            f"<p>Register a passkey named <b>{html.escape(invite['name'])}</b> to act for the "
            "founder. The founder's command that printed this link enrolls it once it lands."
            '</p><button id="register" onclick="register()">Register passkey</button>'
        )
        script = """
async function register() {
  try {
    const o = await post(location.pathname + '/options');
    o.challenge = unb64u(o.challenge); o.user.id = unb64u(o.user.id);
    o.excludeCredentials = (o.excludeCredentials || []).map(c => ({...c, id: unb64u(c.id)}));
    const c = await navigator.credentials.create({publicKey: o});
    await post(location.pathname, {id: c.id, rawId: b64u(c.rawId), type: c.type,
      response: {clientDataJSON: b64u(c.response.clientDataJSON),
                 attestationObject: b64u(c.response.attestationObject)}});
    said('Registered. The founder\\'s command enrolls it now.');
  } catch (e) { said('Not registered: ' + e.message); }
}"""
        return page("Register a passkey", body, script)

    async def register_options(request: Request) -> Response:
        from webauthn import generate_registration_options, options_to_json
        from webauthn.helpers.cose import COSEAlgorithmIdentifier
        from webauthn.helpers.structs import (
            AuthenticatorSelectionCriteria,
            ResidentKeyRequirement,
            UserVerificationRequirement,
        )

        token = request.path_params["token"]
        invite = await cockpit.store.open_invite(token)
        if invite is None:
            return JSONResponse({"error": "this link was used or has expired"}, 404)
        _, rp_id = _origin(request)
        options = generate_registration_options(
            rp_id=rp_id,
            rp_name="Tether",
            user_name="founder",
            user_display_name=f"founder ({invite['name']})",
            # ES256 only: a P-256 passkey can also sign the founder's tags for git.
            supported_pub_key_algs=[COSEAlgorithmIdentifier.ECDSA_SHA_256],
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
        )
        await cockpit.store.invite_challenge(token, b64url(options.challenge))
        return JSONResponse(json.loads(options_to_json(options)))

    async def register(request: Request) -> Response:
        from webauthn import verify_registration_response
        from webauthn.helpers import decode_credential_public_key

        token = request.path_params["token"]
        invite = await cockpit.store.open_invite(token)
        if invite is None or not invite["challenge"]:
            return JSONResponse({"error": "this link was used or has expired"}, 404)
        origin, rp_id = _origin(request)
        try:
            verified = verify_registration_response(
                credential=await request.json(),
                expected_challenge=passkeys.unpadded(invite["challenge"]),
                expected_rp_id=rp_id,
                expected_origin=origin,
                require_user_verification=True,
            )
            key = decode_credential_public_key(verified.credential_public_key)
            point = b"\x04" + key.x + key.y  # type: ignore[union-attr]
        except Exception as exc:  # the library's refusals are many types; each says why
            return JSONResponse({"error": f"the registration does not verify: {exc}"}, 400)
        registered = {
            "credential_id": b64url(verified.credential_id),
            "public_key": base64.b64encode(point).decode(),
            "rp_id": rp_id,
            "origin": origin,
        }
        if not await cockpit.store.invite_registered(token, registered):
            return JSONResponse({"error": "this link was used or has expired"}, 404)
        return JSONResponse({"ok": True})

    async def login_challenge(request: Request) -> Response:
        challenge = cockpit.new_challenge()
        if challenge is None:
            return JSONResponse({"error": "too many sign-ins under way; try again shortly"}, 429)
        credentials = await cockpit.store.active_passkeys()
        return JSONResponse({"challenge": b64url(challenge), "credentials": credentials})

    async def login(request: Request) -> Response:
        try:
            assertion = PasskeyAssertion.model_validate(await request.json())
            said = json.loads(passkeys.unpadded(assertion.client_data_json))
            challenge = cockpit.take_challenge(str(said.get("challenge", "")))
        except (ValueError, TypeError):
            return JSONResponse({"error": "not a passkey sign-in"}, 400)
        problem = await _check(cockpit, assertion, challenge)
        if problem is not None:
            # Refused, and audited: someone tried to sign in as the founder.
            said = {"reason": problem, "from": request.client.host if request.client else ""}
            await _refused(cockpit, "sign_in", said)
            return JSONResponse({"error": problem}, 403)
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        cockpit.sessions = {t: e for t, e in cockpit.sessions.items() if e > now}
        cockpit.sessions[token] = now + SESSION_SECONDS
        response = JSONResponse({"ok": True})
        response.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/founder",
        )
        return response

    async def inbox(request: Request) -> Response:
        if not cockpit.signed_in(request):
            return _sign_in_page()
        items = await cockpit.store.inbox()
        rows = []
        for item in items:
            link = ""
            if item.kind == "deploy_approval":
                target = html.escape(item.subject)
                link = f' <a href="/founder/deployments/{target}">open</a>'
            if item.action.startswith(("tether task unblock ", "tether resume ")):
                target = html.escape(item.action.rsplit(" ", 1)[1])
                link += f' <a href="/founder/tasks/{target}">the task</a>'
            if _recheck_agent(item.action):
                link += (
                    f'<button id="recheck-{item.id}" onclick="recheck({item.id})">'
                    "Recheck with passkey</button>"
                )
            if not item.action:
                link += (
                    f'<button id="ack-{item.id}" onclick="ack({item.id})">'
                    "Acknowledge with passkey</button>"
                )
            if _orders_for(item.action, cockpit.config) is not None:
                link += (
                    f'<button id="act-{item.id}" onclick="act({item.id})">'
                    f"{html.escape(_verb(item.action))} with passkey</button>"
                )
            rows.append(
                f'<div class="item"><div class="muted">#{item.id} {html.escape(item.kind)}</div>'
                f"{html.escape(item.title)}{link}</div>"
            )
        body = '<p><a href="/founder/status">Status</a></p>' + (
            "".join(rows) or "<p>Nothing waits for you.</p>"
        )
        shown = ",".join(str(i.id) for i in sorted(items, key=lambda i: i.id or 0))
        script = (
            f"const LIVE_MS = {int(LIVE_SECONDS * 1000)}; let seen = {json.dumps(shown)};"
            + """
// Live: the page reloads when the number of open items changes.
// Not for a few seconds after an action, so that its answer can be read.
let quietUntil = 0;
setInterval(async () => {
  const r = await fetch('/founder/count', {credentials: 'same-origin'});
  if (!r.ok) return;
  const open = (await r.json()).open;
  if (open !== seen) {
    if (Date.now() > quietUntil) location.reload();
    return;  // changed while an answer is shown: reload once it has been read
  }
  seen = open;
}, LIVE_MS);
async function recheck(id) {
  try {
    const c = await post('/founder/inbox/' + id + '/challenge');
    const a = await assertion(c.challenges[0], c.credentials);
    quietUntil = Date.now() + 15000;
    said('Done: ' + (await post('/founder/inbox/' + id + '/recheck', a)).said);
  } catch (e) { said('Not done: ' + e.message); }
}
async function ack(id) {
  try {
    const c = await post('/founder/inbox/' + id + '/challenge');
    const a = await assertion(c.challenges[0], c.credentials);
    quietUntil = Date.now() + 15000;
    said('Done: ' + (await post('/founder/inbox/' + id + '/acknowledge', a)).said);
  } catch (e) { said('Not done: ' + e.message); }
}
async function act(id) {
  try {
    const c = await post('/founder/inbox/' + id + '/challenge');
    const assertions = [];
    for (const challenge of c.challenges)
      assertions.push(await assertion(challenge, c.credentials));
    const v = await post('/founder/inbox/' + id + '/act', {orders: c.orders, assertions});
    quietUntil = Date.now() + 15000;
    said('Done: ' + v.said);
  } catch (e) { said('Not done: ' + e.message); }
}"""
        )
        return page("Inbox", body, script)

    async def deployment(request: Request) -> Response:
        if not cockpit.signed_in(request):
            return _sign_in_page()
        deployment_id = request.path_params["deployment"]
        try:
            view = await deploy_api.deploy_view(cockpit.client, deployment_id)
        except TetherError as exc:
            return page("No such deployment", f"<p>{html.escape(str(exc))}</p>", status=404)
        r = view.request
        body = (
            f'<div class="item"><b>{html.escape(r.service)}</b> to {html.escape(r.environment)}'
            f" at {html.escape(r.ref)} (<code>{html.escape((view.commit or '?')[:12])}</code>),"
            f' asked by {html.escape(r.agent)}<div class="muted">{html.escape(view.state)}'
            f" {html.escape(view.reason or '')}</div></div>"
        )
        for ev in view.health:
            said = f"health {ev.name}: {'PASS' if ev.passed else 'FAIL'} {ev.summary}"
            body += f'<div class="muted">{html.escape(said)}</div>'
        for refusal in view.approval_refusals:
            body += f'<div class="muted">approval refused: {html.escape(refusal)}</div>'
        if view.state == "queued" and view.approval is None:
            body += (
                '<button id="approve" onclick="approve(\'approve\')">Approve with passkey</button>'
                '<p><input id="reason" placeholder="why reject it" style="width:100%;'
                'font-size:1rem;padding:.5rem;box-sizing:border-box"></p>'
                '<button id="reject" onclick="approve(\'reject\')" style="background:#b42318">'
                "Reject with passkey</button>"
            )
        trail = await cockpit.store.audit_trail(deployment_id=deployment_id)
        if trail:
            body += "<h2>Audit</h2>" + "".join(
                f'<div class="muted">{r["at"]:%H:%M:%S} {html.escape(r["kind"])} '
                f"{html.escape(r['actor'])} {html.escape(str(_why(r['detail'])))}</div>"
                for r in trail
            )
        script = (
            "const deployment = "
            + json.dumps(deployment_id)
            + ";"
            + """
async function approve(decision) {
  try {
    let reason = '';
    if (decision === 'reject')
      reason = document.getElementById('reason').value || 'rejected from the phone';
    const c = await post('/founder/deployments/' + deployment + '/challenge', {decision, reason});
    let tag = null;
    if (c.tag) tag = {name: c.tag.name, payload: c.tag.payload,
                      assertion: await assertion(c.tag.challenge, c.credentials)};
    const a = await assertion(c.challenge, c.credentials);
    const v = await post('/founder/deployments/' + deployment + '/approve',
                         {approval: c.approval, assertion: a, tag});
    const done = decision === 'reject' ? 'Rejected: ' : 'Approved: ';
    said(v.accepted ? done + v.reason : 'Refused: ' + v.reason);
  } catch (e) { said('Not approved: ' + e.message); }
}"""
        )
        return page(f"Deployment {deployment_id}", body, script)

    async def task(request: Request) -> Response:
        """A task: its state and hold, each check with its latest evidence, its history."""
        if not cockpit.signed_in(request):
            return _sign_in_page()
        record = await cockpit.store.get_task(request.path_params["task"])
        if record is None:
            return page("No such task", "<p>No task by that id.</p>", status=404)
        e, t = html.escape, record.task
        body = (
            f'<div class="item"><b>{e(t.spec.title)}</b> {e(t.state)}'
            f"{' by ' + e(t.assignee) if t.assignee else ''}"
            + (f"<div>HELD: {e(t.hold_reason)}</div>" if t.hold_reason else "")
            + "</div><h2>Checks</h2>"
        )
        evidence = {ev.index: ev for ev in t.last_evidence}
        for n, check in enumerate(t.spec.checks):
            ev = evidence.get(n)
            said = f"{'PASS' if ev.passed else 'FAIL'}: {ev.summary}" if ev else "not run yet"
            body += f'<div class="item">{e(check.kind)} {e(check.name or "")}'
            body += f'<div class="muted">{e(said)}</div></div>'
        body += "<h2>History</h2>" + "".join(
            f'<div class="muted">{ev.at:%Y-%m-%d %H:%M} {e(ev.kind)} {e(ev.actor)} '
            f"{e(str(_why(ev.detail)))}</div>"
            for ev in record.events
        )
        return page(f"Task {t.spec.id}", body)

    async def approval_challenge(request: Request) -> Response:
        if not cockpit.signed_in(request):
            return JSONResponse({"error": "sign in first"}, 401)
        deployment_id = request.path_params["deployment"]
        try:
            asked_for = await request.json()
        except ValueError:
            asked_for = {}
        decision = "reject" if asked_for.get("decision") == "reject" else "approve"
        reason = str(asked_for.get("reason") or "")[:500]
        try:
            view = await deploy_api.deploy_view(cockpit.client, deployment_id)
            # A rejection needs no tag: nothing will be deployed.
            tag = (
                await asyncio.to_thread(_founder_tag, cockpit.config, view)
                if decision == "approve"
                else None
            )
            approval = deploy_api.prepare_approval(
                view,
                decision=decision,
                by="founder",
                reason=reason,
                ttl=timedelta(minutes=5),
                tag=tag[0] if tag else None,
            )
        except TetherError as exc:
            return JSONResponse({"error": str(exc)}, 409)
        challenge = passkeys.challenge_of(approval.payload())
        asked: dict[str, object] = {
            "approval": approval.model_dump(mode="json"),
            "challenge": b64url(challenge),
            "credentials": await cockpit.store.active_passkeys(),
        }
        if tag is not None:
            # The service wants the founder's signed tag: the passkey signs it too, as git's
            # SSH signature (tether/trust/passkey_tags.py).
            name, payload = tag
            asked["tag"] = {
                "name": name,
                "payload": base64.b64encode(payload).decode(),
                "challenge": b64url(passkey_tags.to_sign(payload)),
            }
        return JSONResponse(asked)

    async def approve(request: Request) -> Response:
        """The approval and its assertion, passed on to the workflow, which verifies both: a
        session cookie alone (no assertion, or another one) is refused there."""
        if not cockpit.signed_in(request):
            return JSONResponse({"error": "sign in first"}, 401)
        deployment_id = request.path_params["deployment"]
        try:
            body = await request.json()
            assertion = PasskeyAssertion.model_validate(body.get("assertion"))
            approval = body.get("approval")
        except (ValueError, TypeError, AttributeError):
            return JSONResponse({"error": "send the approval and its passkey assertion"}, 400)
        enrollment = await cockpit.store.passkey_enrollment(assertion.credential_id)
        if enrollment is None:
            problem = "that passkey is not enrolled, or was revoked"
            await _refused(cockpit, "approval", {"reason": problem, "deployment": deployment_id})
            return JSONResponse({"error": problem}, 403)
        try:
            proof = PasskeyApproval.model_validate(
                {"approval": approval, "enrollment": enrollment, "assertion": assertion}
            )
            if isinstance(body.get("tag"), dict):
                await _write_founder_tag(cockpit, proof, body["tag"])
            verdict = await deploy_api.approve_by_passkey(cockpit.client, deployment_id, proof)
        except Refused as exc:
            return JSONResponse({"error": str(exc)}, 403)
        except (TetherError, ValueError) as exc:
            return JSONResponse({"error": str(exc)[:500]}, 400)
        return JSONResponse({"accepted": verdict.accepted, "reason": verdict.reason})

    async def item_challenge(request: Request) -> Response:
        """The orders an inbox item's action needs, each to be signed by the passkey (a budget
        raise: the budget's order, and the release of each session it holds)."""
        if not cockpit.signed_in(request):
            return JSONResponse({"error": "sign in first"}, 401)
        item = await cockpit.store.inbox_item(int(request.path_params["item"]))
        if item is not None and item.cleared_at is None and item.id:
            # A notice (acknowledged) or a blocked credential (rechecked): the founder's passkey
            # over that step on that item, verified by the gateway (no workflow's order).
            step = "acknowledge" if not item.action else "recheck"
            if step == "acknowledge" or _recheck_agent(item.action):
                return JSONResponse(
                    {
                        "challenges": [b64url(_step(step, item.id))],
                        "credentials": await cockpit.store.active_passkeys(),
                    }
                )
        wanted = _orders_for(item.action, cockpit.config) if item is not None else None
        if item is None or item.cleared_at is not None or wanted is None:
            return JSONResponse({"error": "no open item with an action the cockpit can take"}, 404)
        wanted = [*wanted, *await _releases(cockpit, wanted)]
        now = datetime.now(UTC)
        orders = [
            FounderOrder(
                action=action,
                subject=subject,
                reason="from the founder's cockpit",
                by="founder",
                signed_at=now,
                expires_at=now + timedelta(minutes=10),
            )
            for action, subject in wanted
        ]
        return JSONResponse(
            {
                "orders": [o.model_dump(mode="json") for o in orders],
                "challenges": [b64url(passkeys.challenge_of(o.payload())) for o in orders],
                "credentials": await cockpit.store.active_passkeys(),
            }
        )

    async def item_act(request: Request) -> Response:
        """The item's orders, each with its passkey assertion, carried out through the Python
        client; each workflow verifies its order itself."""
        if not cockpit.signed_in(request):
            return JSONResponse({"error": "sign in first"}, 401)
        item = await cockpit.store.inbox_item(int(request.path_params["item"]))
        wanted = _orders_for(item.action, cockpit.config) if item is not None else None
        if item is None or wanted is None:
            return JSONResponse({"error": "no item with an action the cockpit can take"}, 404)
        try:
            body = await request.json()
            orders = [FounderOrder.model_validate(o) for o in body["orders"]]
            assertions = [PasskeyAssertion.model_validate(a) for a in body["assertions"]]
        except (ValueError, TypeError, KeyError):
            return JSONResponse({"error": "send the orders and one passkey assertion each"}, 400)
        if len(orders) != len(assertions) or not orders:
            return JSONResponse({"error": "send the orders and one passkey assertion each"}, 400)
        signed = []
        for order, assertion in zip(orders, assertions, strict=True):
            enrollment = await cockpit.store.passkey_enrollment(assertion.credential_id)
            if enrollment is None:
                return JSONResponse({"error": "that passkey is not enrolled, or was revoked"}, 403)
            proof = PasskeyProof(enrollment=enrollment, assertion=assertion)
            signed.append(order.model_copy(update={"passkey": proof}))
        try:
            said = await _carry_out(cockpit, item.action, signed)
        except Refused as exc:
            return JSONResponse({"error": str(exc)}, 403)
        except (TetherError, ValueError) as exc:
            return JSONResponse({"error": str(exc)[:500]}, 400)
        return JSONResponse({"said": said})

    async def status(request: Request) -> Response:
        """Agents and their runs (held ones first), budgets, deployments, refused messages: what
        `tether status` shows, at phone width."""
        from tether.client.status import gather_status

        if not cockpit.signed_in(request):
            return _sign_in_page()
        report = await gather_status(cockpit.store, cockpit.config)
        e = html.escape
        agents = sorted(
            report.agents, key=lambda a: (a.hold is None and a.blocker is None, a.agent)
        )
        cards = []
        for a in agents:
            trouble = a.hold or a.blocker
            figures = []
            if a.context_pct is not None:
                figures.append(f"context {a.context_pct:.0%}")
            if a.cost_usd is not None:
                figures.append(f"${a.cost_usd:.2f}")
            if a.run:
                figures.append(f"run: {a.run}")
            cards.append(
                f'<div class="item"><b>{e(a.agent)}</b> {e(str(a.session or "no session"))}'
                f"{' on ' + e(a.task_id) if a.task_id else ''}"
                f'<div class="muted">{e(", ".join(figures))}</div>'
                + (f"<div>HELD: {e(trouble)}</div>" if trouble else "")
                + "</div>"
            )
        budgets = "".join(
            f'<div class="item">{e(b.name)} {e(b.period)}: ${b.spent_usd:.2f} of '
            f"${b.limit_usd:.2f}{' (raised: ' + e(b.raised) + ')' if b.raised else ''}</div>"
            for b in report.budgets
        )
        deploys = "".join(
            f'<div class="item">{e(d.service)} {e(d.environment)} {e(d.ref)}: {e(d.state)}'
            f'<div class="muted">{e(d.deployment_id)} {e(d.reason)}</div></div>'
            for d in report.deployments
        )
        running = "".join(
            f'<div class="item">{e(r.service)} {e(r.environment)}: <code>{e(r.commit[:12])}</code>'
            f" {e(r.ref)}</div>"
            for r in report.running
        )
        refused = "".join(f'<div class="muted">{e(r)}</div>' for r in report.refused_recent)
        body = (
            '<p><a href="/founder">Inbox</a></p><h2>Agents</h2>'
            + ("".join(cards) or "<p>No agents.</p>")
            + ("<h2>Budgets</h2>" + budgets if budgets else "")
            + ("<h2>What runs where</h2>" + running if running else "")
            + ("<h2>Deployments</h2>" + deploys if deploys else "")
            + f"<h2>Refused messages: {report.refused_total}</h2>{refused}"
        )
        return page("Status", body)

    async def inbox_count(request: Request) -> Response:
        """Which items are open: the inbox page asks every few seconds and reloads when that
        changes (live, with nothing held open on the server)."""
        if not cockpit.signed_in(request):
            return JSONResponse({"error": "sign in first"}, 401)
        ids = sorted(i.id for i in await cockpit.store.inbox() if i.id is not None)
        return JSONResponse({"open": ",".join(map(str, ids))})

    async def acknowledge(request: Request) -> Response:
        """A notice cleared: no workflow's state changes, so the gateway verifies the passkey's
        assertion itself (the same verifier), and the clearing is audited."""
        if not cockpit.signed_in(request):
            return JSONResponse({"error": "sign in first"}, 401)
        item_id = int(request.path_params["item"])
        try:
            assertion = PasskeyAssertion.model_validate(await request.json())
        except ValueError:
            return JSONResponse({"error": "send the passkey's assertion"}, 400)
        problem = await _check(cockpit, assertion, _step("acknowledge", item_id))
        if problem is None:
            problem = await cockpit.store.passkey_standing(assertion.credential_id)
        if problem is not None:
            await _refused(cockpit, "acknowledgement", {"reason": problem, "item": item_id})
            return JSONResponse({"error": problem}, 403)
        cleared = await cockpit.store.acknowledge([item_id])
        if not cleared:
            return JSONResponse({"error": "that item is not an open notice"}, 409)
        return JSONResponse({"said": f"#{item_id} acknowledged"})

    async def recheck(request: Request) -> Response:
        """A blocked credential probed again (after the founder fixed it): what the agent's own
        runtime may ask too, so it goes with the gateway's seal for that agent, once the
        passkey's assertion over this recheck verifies."""
        if not cockpit.signed_in(request):
            return JSONResponse({"error": "sign in first"}, 401)
        from tether.client import sessions as session_api
        from tether.trust import seals

        item = await cockpit.store.inbox_item(int(request.path_params["item"]))
        agent = _recheck_agent(item.action) if item is not None else None
        if item is None or item.id is None or agent is None or cockpit.sealed is None:
            return JSONResponse({"error": "no item the cockpit can recheck"}, 404)
        try:
            assertion = PasskeyAssertion.model_validate(await request.json())
        except ValueError:
            return JSONResponse({"error": "send the passkey's assertion"}, 400)
        problem = await _check(cockpit, assertion, _step("recheck", item.id))
        if problem is None:
            problem = await cockpit.store.passkey_standing(assertion.credential_id)
        if problem is not None:
            await _refused(cockpit, "recheck", {"reason": problem, "item": item.id})
            return JSONResponse({"error": problem}, 403)
        try:
            with seals.speaking(agent):
                view = await session_api.recheck_session(cockpit.sealed, agent, "founder")
        except TetherError as exc:
            return JSONResponse({"error": str(exc)[:500]}, 409)
        return JSONResponse({"said": f"{agent}'s session is {view.state}"})

    return [
        Route("/founder", inbox, methods=["GET"]),
        Route("/founder/inbox/{item:int}/recheck", recheck, methods=["POST"]),
        Route("/founder/inbox/{item:int}/acknowledge", acknowledge, methods=["POST"]),
        Route("/founder/status", status, methods=["GET"]),
        Route("/founder/tasks/{task}", task, methods=["GET"]),
        Route("/founder/count", inbox_count, methods=["GET"]),
        Route("/founder/inbox/{item:int}/challenge", item_challenge, methods=["POST"]),
        Route("/founder/inbox/{item:int}/act", item_act, methods=["POST"]),
        Route("/founder/register/{token}", register_page, methods=["GET"]),
        Route("/founder/register/{token}/options", register_options, methods=["POST"]),
        Route("/founder/register/{token}", register, methods=["POST"]),
        Route("/founder/login/challenge", login_challenge, methods=["POST"]),
        Route("/founder/login", login, methods=["POST"]),
        Route("/founder/deployments/{deployment}", deployment, methods=["GET"]),
        Route("/founder/deployments/{deployment}/challenge", approval_challenge, methods=["POST"]),
        Route("/founder/deployments/{deployment}/approve", approve, methods=["POST"]),
    ]


async def _check(
    cockpit: Cockpit, assertion: PasskeyAssertion, challenge: bytes | None
) -> str | None:
    if challenge is None:
        return "that sign-in was not asked for, or took too long"
    founder_key = cockpit.config.founder.key_text()
    if not founder_key:
        return "no founder public key is configured ([founder] public_key in tether.toml)"
    enrollment = await cockpit.store.passkey_enrollment(assertion.credential_id)
    if enrollment is None:
        return "that passkey is not enrolled, or was revoked"
    founder = [parse_public(founder_key)]
    return passkeys.verify(enrollment, assertion, challenge, founder)


def cockpit_routes(
    store: Store, client: Client, config: TetherConfig, sealed: Client | None = None
) -> list[Route]:
    return routes(Cockpit(store, client, config, sealed))


def _orders_for(action: str, config: TetherConfig) -> list[tuple[str, str]] | None:
    """The founder's orders an inbox item's command stands for (Tether writes these commands,
    tether/core/inbox.py): (action, subject) each; None for a command the cockpit does not
    take."""
    words = shlex.split(action) if action else []
    match words:
        case ["tether", "task", "unblock", task]:
            return [("unblock", task)]
        case ["tether", "resume", task]:
            return [("resume", task)]
        case ["tether", "session", "release", agent]:
            return [("release", agent)]
        case ["tether", "budget", "raise", "--agent", agent, "--daily", figure]:
            scope = limits.agent_scope(agent, datetime.now(UTC).date())
        case ["tether", "budget", "raise", "--team-monthly", figure]:
            scope = limits.team_scope(datetime.now(UTC).date())
        case _:
            return None
    try:
        limit = float(figure)
    except ValueError:
        return None
    return [("budget", limits.subject(scope, limit))]


def _verb(action: str) -> str:
    if " unblock " in action or " release " in action:
        return "Lift the hold"
    if action.startswith("tether resume "):
        return "Resume"
    return "Raise the budget"


async def _releases(cockpit: Cockpit, wanted: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """For a budget raise, the release of each session the budget holds (one order each)."""
    from tether.client.budgets import held_by_budget

    if [a for a, _ in wanted] != ["budget"]:
        return []
    scope = wanted[0][1]
    agent = scope.split(":")[1] if scope.startswith("agent:") else None
    return [
        ("release", name) for name in await held_by_budget(cockpit.client, cockpit.config, agent)
    ]


async def _carry_out(cockpit: Cockpit, action: str, orders: list[FounderOrder]) -> str:
    from tether.client import budgets as budget_api
    from tether.client import sessions as session_api
    from tether.client import tasks as task_api

    first = orders[0]
    reason = "from the founder's cockpit"
    if first.action == "unblock":
        view = await task_api.unblock_task(cockpit.client, first.subject, "founder", reason, first)
        return f"task {first.subject} unblocked; it is now {view.state}"
    if first.action == "resume":
        view = await task_api.resume_task(cockpit.client, first.subject, "founder", reason, first)
        return f"task {first.subject} resumed; it is now {view.state}"
    if first.action == "release":
        await session_api.release_session(cockpit.client, first.subject, "founder", reason, first)
        return f"{first.subject}'s session released"
    by_subject: dict[tuple[str, str], FounderOrder] = {(o.action, o.subject): o for o in orders}

    def sign(kind: str, subject: str) -> FounderOrder:
        found = by_subject.get((kind, subject))
        if found is None:
            raise Refused(f"no passkey-signed order to {kind} {subject}: ask again")
        return found

    limit = float(first.subject.rsplit(":", 1)[1])
    agent = first.subject.split(":")[1] if first.subject.startswith("agent:") else None
    outcome = await budget_api.raise_budget(
        cockpit.client, cockpit.store, cockpit.config, sign, limit, agent=agent, reason=reason
    )
    released = ", ".join(f"{a}: {s}" for a, s in outcome.sessions.items()) or "no session held"
    return f"budget {outcome.scope} raised to ${outcome.limit_usd:.2f} ({released})"


def _founder_tag(config: TetherConfig, view: DeployView) -> tuple[str, bytes] | None:
    """The next founder's tag of the deployment's service and the tag object to sign (its
    payload), when the service wants signed tags; None when it does not."""
    service = config.services.get(view.request.service)
    if service is None or not service.signed_tags or view.commit is None:
        return None
    repo = config.repositories[service.repository]
    kind = view.request.environment
    name = tags.next_tag(Path(repo.path), repo.remote, kind, view.request.service)
    message = (
        f"{view.request.service} {view.commit[:12]} approved by the founder on the founder's "
        f"device ({view.deployment_id})"
    )
    payload = passkey_tags.tag_payload(
        view.commit, name, "founder <founder@tether.invalid>", int(time.time()), message
    )
    return name, payload


async def _write_founder_tag(
    cockpit: Cockpit, proof: PasskeyApproval, sent: dict[str, Any]
) -> None:
    """The tag the passkey signed, written to the service's repository and pushed: its payload
    must be the tag the approval names, on the approval's commit."""
    approval = proof.approval
    try:
        payload = base64.b64decode(str(sent.get("payload", "")), validate=True)
        signed = PasskeyAssertion.model_validate(sent.get("assertion"))
    except ValueError as exc:
        raise TetherError("send the tag's payload and its passkey assertion") from exc
    head = payload.split(b"\n\n", 1)[0].decode(errors="replace").splitlines()
    if head[:3] != [f"object {approval.commit}", "type commit", f"tag {approval.tag}"]:
        raise TetherError("the signed tag is not the one the approval names, on its commit")
    enrollment = await cockpit.store.passkey_enrollment(signed.credential_id)
    if enrollment is None:
        raise TetherError("the tag's passkey is not enrolled, or was revoked")
    armored = passkey_tags.ssh_signature(
        enrollment.point(),
        enrollment.rp_id,
        passkeys.unpadded(signed.authenticator_data),
        passkeys.unpadded(signed.client_data_json),
        passkeys.unpadded(signed.signature),
        enrollment.origin,
    )
    service = cockpit.config.services[approval.service]
    repo = cockpit.config.repositories[service.repository]
    assert approval.tag is not None
    await asyncio.to_thread(
        tags.write_tag, Path(repo.path), approval.tag, payload + armored.encode()
    )
    await asyncio.to_thread(tags.push_tag, Path(repo.path), repo.remote, approval.tag)


def _why(detail: Any) -> str:
    """The one line of an audit row's or event's detail worth showing."""
    if isinstance(detail, dict):
        return str(detail.get("reason") or detail.get("summary") or "")[:200]
    return ""


def _step(step: str, item_id: int) -> bytes:
    """The challenge for one step (acknowledge, recheck) on inbox item `item_id`, nothing else."""
    return passkeys.challenge_of(f"tether-{step}/v1\n{item_id}".encode())


def _recheck_agent(action: str) -> str | None:
    """The agent whose credential a blocked session's item asks to recheck (its command ends
    `tether session recheck AGENT`)."""
    words = action.split()
    if len(words) >= 4 and words[-4:-1] == ["tether", "session", "recheck"]:
        return words[-1]
    return None


async def _refused(cockpit: Cockpit, what: str, said: dict[str, Any]) -> None:
    """A passkey refused at the cockpit: audited, and in the founder's inbox (one item a day per
    kind of attempt). Agents reach the gateway, so a flood is counted: one audit entry per kind
    every REFUSAL_AUDIT_SECONDS at most, with how many came since the last."""
    now = time.monotonic()
    last, since = cockpit.refusals.get(what, (-math.inf, 0))
    if now - last < REFUSAL_AUDIT_SECONDS:
        cockpit.refusals[what] = (last, since + 1)
        return
    cockpit.refusals[what] = (now, 0)
    said = {**said, "refused since the last entry": since}
    await cockpit.store.audit_event(f"cockpit_{what}_refused", "founder", "cockpit", said)
    day = datetime.now(UTC).date().isoformat()
    await cockpit.store.post_inbox(
        InboxItem(
            key=f"refused:cockpit:{what}:{day}",
            kind="founder_action_refused",
            subject="cockpit",
            title=(
                f"A founder's {what.replace('_', '-')} at the cockpit was refused: "
                f"{str(said['reason'])[:200]}"
            ),
            detail={"see": "tether audit export (cockpit_*_refused)"},
        )
    )
