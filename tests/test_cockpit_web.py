"""The founder's cockpit on a phone, in a real headless Chromium with the DevTools virtual
authenticator (a platform passkey, ES256, the user verified): `tether founder passkey add`
prints a one-time link, the page registers the passkey and the command enrolls it with the
founder's key; the founder signs in with it, opens the deployment waiting for approval from
the inbox, and approves it with the passkey; the workflow verifies the assertion itself and
the rollout runs. A session cookie alone acts on nothing; a used link registers nothing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client

from tests.support.browser import Browser
from tests.support.cli import TETHER, tether
from tests.support.deploy import deploy_rig
from tests.support.gateway import running_gateway
from tests.support.helpers import FakeForge, clean_environment, eventually
from tests.support.sessions import REJECTED_TOKEN, TOKEN_ENV, VALID_TOKEN, running_team
from tether import client as api
from tether.contracts import (
    DeployState,
    InboxItem,
    Report,
    SessionInput,
    ShellCheck,
    TaskSpec,
    TokenUsage,
    ToolCall,
)
from tether.trust.passkey_tags import allowed_signer
from tether.trust.signing import generate

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("TETHER_TEST_ARTIFACTS") or ROOT / "test-artifacts")
PHONE = {"width": 390, "height": 844}


def _authenticator(browser: Browser) -> None:
    browser.call("WebAuthn.enable", {"enableUI": False}, session=True)
    browser.call(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
        session=True,
    )


def _click(browser: Browser, element: str) -> None:
    browser.evaluate(f"document.getElementById({json.dumps(element)}).click()")


async def test_the_founder_enrolls_a_passkey_and_approves_a_deployment_from_the_phone(
    client: Client, fresh_db: str, tmp_path: Path, temporal_address: str
) -> None:
    async with (
        # The service wants the founder's signed tag (the default): the passkey signs it too.
        deploy_rig(client, fresh_db, tmp_path / "rig") as rig,
        running_gateway(client, rig.store, rig.config, rig.task_queue, tmp_path / "gw") as gw,
    ):
        # A passkey's relying party is a host name: the page is opened as localhost.
        url = gw.url.replace("127.0.0.1", "localhost")
        env = clean_environment(
            TETHER_HOME=str(rig.home),  # where the rig's founder.key is
            TEMPORAL_ADDRESS=temporal_address,
            DATABASE_URL=fresh_db,
            TETHER_TASK_QUEUE=rig.task_queue,
        )
        add = await asyncio.create_subprocess_exec(
            *TETHER, "founder", "passkey", "add", "--name", "phone", "--gateway", url,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert add.stdout is not None
        await asyncio.wait_for(add.stdout.readline(), 60)  # "open this link ..."
        link = (await asyncio.wait_for(add.stdout.readline(), 60)).decode().strip()
        assert link.startswith(f"{url}/founder/register/")

        browser = await asyncio.to_thread(Browser, **PHONE)
        try:
            await asyncio.to_thread(_authenticator, browser)
            await asyncio.to_thread(browser.open, link)
            await asyncio.to_thread(browser.wait_for_text, "Register a passkey named phone")
            await asyncio.to_thread(_click, browser, "register")
            await asyncio.to_thread(browser.wait_for_text, "Registered.")
            out, err = await asyncio.wait_for(add.communicate(), 60)
            assert add.returncode == 0, err.decode()
            assert f"enrolled passkey phone for {url}" in out.decode()
            (enrolled,) = await rig.store.enrolled_passkeys()
            # The link was for one registration.
            await asyncio.to_thread(browser.open, link)
            await asyncio.to_thread(browser.wait_for_text, "This link was used or has expired")

            view = await rig.request("main")
            await asyncio.to_thread(browser.open, f"{url}/founder")
            await asyncio.to_thread(browser.wait_for_text, "Sign in with passkey")
            # Not signed in: the approval endpoints answer nothing.
            refused = await asyncio.to_thread(
                browser.evaluate,
                f"fetch('/founder/deployments/{view.deployment_id}/challenge',"
                " {method: 'POST'}).then(r => r.status)",
                True,
            )
            assert refused == 401
            # Nor does an action (agents reach the gateway: they cannot even be refused there
            # without signing in first).
            acted = await asyncio.to_thread(
                browser.evaluate,
                f"fetch('/founder/deployments/{view.deployment_id}/approve',"
                " {method: 'POST', body: '{}'}).then(r => r.status)",
                True,
            )
            assert acted == 401
            # A sign-in that was never asked for (a made-up assertion): refused, and audited.
            forged = await asyncio.to_thread(
                browser.evaluate,
                "fetch('/founder/login', {method: 'POST', headers: {'content-type':"
                " 'application/json'}, body: JSON.stringify({credential_id: 'x',"
                " authenticator_data: 'AA', signature: 'AA', client_data_json:"
                " btoa('{\"challenge\":\"made-up\"}').replace(/=+$/, '')})})"
                ".then(r => r.status)",
                True,
            )
            assert forged == 403
            kinds = [row["kind"] async for row in rig.store.audit_rows()]
            assert "cockpit_sign_in_refused" in kinds
            await asyncio.to_thread(_click, browser, "signin")
            await asyncio.to_thread(browser.wait_for_text, "Inbox", "asks to deploy")
            await asyncio.to_thread(browser.screenshot, ARTIFACTS / "cockpit-inbox-phone.png")

            await asyncio.to_thread(browser.open, f"{url}/founder/deployments/{view.deployment_id}")
            await asyncio.to_thread(browser.wait_for_text, "Approve with passkey", rig.service)
            # Signed in, a cookie alone still acts on nothing: an approval without the
            # passkey's assertion is refused.
            alone = await asyncio.to_thread(
                browser.evaluate,
                f"fetch('/founder/deployments/{view.deployment_id}/approve', {{method: 'POST',"
                " headers: {'content-type': 'application/json'}, body: '{}'}).then(r => r.status)",
                True,
            )
            assert alone == 400
            await asyncio.to_thread(browser.screenshot, ARTIFACTS / "cockpit-deployment-phone.png")
            await asyncio.to_thread(_click, browser, "approve")
            await asyncio.to_thread(
                browser.wait_for_text, "Approved: signed on the founder's device (passkey 'phone')"
            )
            # The deployment's page, afterwards: its audit.
            await asyncio.to_thread(browser.open, f"{url}/founder/deployments/{view.deployment_id}")
            await asyncio.to_thread(browser.wait_for_text, "Audit", "approval_accepted")

            # Another request, rejected from the phone with a reason.
            unwanted = await rig.request("main", agent="coder")
            await asyncio.to_thread(
                browser.open, f"{url}/founder/deployments/{unwanted.deployment_id}"
            )
            await asyncio.to_thread(browser.wait_for_text, "Reject with passkey")
            await asyncio.to_thread(
                browser.evaluate, "document.getElementById('reason').value = 'not this week'"
            )
            await asyncio.to_thread(_click, browser, "reject")
            await asyncio.to_thread(
                browser.wait_for_text, "Rejected: signed on the founder's device"
            )

            # Revoked with the founder's command, the passkey still signs, and the worker
            # refuses what it signs.
            revoked = await tether(env, "founder", "passkeys", "--revoke", "phone")
            assert revoked.code == 0, revoked.err
            later = await rig.request("main")
            await asyncio.to_thread(
                browser.open, f"{url}/founder/deployments/{later.deployment_id}"
            )
            await asyncio.to_thread(browser.wait_for_text, "Approve with passkey")
            await asyncio.to_thread(_click, browser, "approve")
            await asyncio.to_thread(
                browser.wait_for_text, "Not approved: that passkey is not enrolled, or was revoked"
            )
            refusals = [i for i in await rig.store.inbox() if i.kind == "founder_action_refused"]
            assert any("approval at the cockpit was refused" in i.title for i in refusals)
        finally:
            await asyncio.to_thread(browser.close)
        done = await rig.finish(view)
        assert done.state == DeployState.DONE, done.reason
        trail = await rig.store.audit_trail(deployment_id=view.deployment_id)
        accepted = [r for r in trail if r["kind"] == "approval_accepted"]
        assert accepted and "passkey 'phone'" in accepted[0]["detail"]["reason"]
        # The founder's staging tag, signed by the passkey, is in the service's shared remote,
        # and git itself verifies it against the enrolled passkey.
        tag = f"staging/{rig.service}/1"
        assert done.approval is not None and done.approval.tag == tag
        signers = tmp_path / "allowed_signers"
        signers.write_text(allowed_signer("founder", enrolled.point(), enrolled.rp_id))
        said = await asyncio.to_thread(
            _verify_in_a_clone, rig.repo, tmp_path / "clone", signers, tag
        )
        assert said.returncode == 0, said.stderr
        assert 'Good "git" signature for founder with ECDSA-SK key' in said.stderr


async def test_the_founder_lifts_a_loop_hold_and_raises_a_budget_from_the_phone(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    valid_token: None,
    temporal_address: str,
) -> None:
    key_home = tmp_path / "founder"
    _, public = generate(key_home)
    extra = {"founder": {"public_key": public}, "budget": {"team_monthly_usd": 5.0}}
    async with (
        running_team(client, fresh_db, tmp_path / "team", forge, extra) as team,
        running_gateway(client, team.store, team.config, team.task_queue, tmp_path / "gw") as gw,
    ):
        q, coder, devops = team.task_queue, team.agent("coder"), team.agent("devops")
        # coder loops on its task: five identical failures block it.
        task_id = f"loop-{coder.rsplit('-', 1)[1]}"
        await api.create_task(
            client, q, TaskSpec(id=task_id, title="Loop", checks=[ShellCheck(command="true")])
        )
        await api.start_session(client, q, SessionInput(agent=coder))
        await api.claim_task(client, task_id, coder)
        failing = ToolCall(
            tool="Bash", ok=False, action="Bash:kubectl set", signature="1|Forbidden|forbidden"
        )
        for n in range(5):
            call = failing.model_copy(update={"input_digest": str(n)})
            await api.report(client, coder, Report(tool_call=call))
        # devops spends past the team's monthly budget: its session is held.
        today = datetime.now(UTC).date().isoformat()
        await team.store.record_spend_days(devops, f"{devops}:earlier", {today: 4.0})
        await api.start_session(client, q, SessionInput(agent=devops))
        usage = {"claude-sonnet-4-5": TokenUsage(input=200_000, output=10_000)}
        for _ in range(2):
            await api.report(client, devops, Report(usage=usage))

        async def held_items() -> dict[str, int] | None:
            kinds = {i.kind: i.id for i in await team.store.inbox() if i.id is not None}
            wanted = ("loop_blocked", "budget_exceeded")
            return {k: kinds[k] for k in wanted} if all(k in kinds for k in wanted) else None

        items = await eventually(held_items, "the loop and the budget in the inbox")

        url = gw.url.replace("127.0.0.1", "localhost")
        env = clean_environment(
            TETHER_HOME=str(key_home),
            TEMPORAL_ADDRESS=temporal_address,
            DATABASE_URL=fresh_db,
            TETHER_TASK_QUEUE=q,
        )
        browser = await asyncio.to_thread(Browser, **PHONE)
        try:
            await asyncio.to_thread(_authenticator, browser)
            await _enroll(browser, env, url)
            await _sign_in(browser, url)
            await asyncio.to_thread(
                browser.wait_for_text, "stopped in a loop", "stopped by a hard budget"
            )
            await asyncio.to_thread(browser.screenshot, ARTIFACTS / "cockpit-holds-phone.png")
            # The status: held work first.
            await asyncio.to_thread(browser.open, f"{url}/founder/status")
            shown = await asyncio.to_thread(browser.wait_for_text, "Agents", "Refused messages")
            assert shown.count("HELD:") == 2 and "team" in shown and "$5.00" in shown, shown
            await asyncio.to_thread(browser.open, f"{url}/founder")
            await asyncio.to_thread(browser.wait_for_text, "stopped in a loop")
            # The held task's page: its checks and its history, the governor's block in it.
            await asyncio.to_thread(browser.open, f"{url}/founder/tasks/{task_id}")
            await asyncio.to_thread(
                browser.wait_for_text, "Checks", "not run yet", "History", "loop_blocked"
            )
            await asyncio.to_thread(browser.open, f"{url}/founder")
            await asyncio.to_thread(browser.wait_for_text, "stopped in a loop")
            await asyncio.to_thread(_click, browser, f"act-{items['loop_blocked']}")
            await asyncio.to_thread(
                browser.wait_for_text, f"Done: task {task_id} unblocked; it is now claimed"
            )
            # Live: a new item arrives while the page is open, and the page shows it.
            notice = InboxItem(
                key=f"live-{task_id}", kind="pseudo_work", subject=coder, title="a new notice"
            )
            await team.store.post_inbox(notice)
            await asyncio.to_thread(browser.wait_for_text, "a new notice", seconds=20)
            # Acknowledged with the passkey: cleared, and the clearing audited.
            (posted,) = [i for i in await team.store.inbox() if i.key == f"live-{task_id}"]
            await asyncio.to_thread(_click, browser, f"ack-{posted.id}")
            await asyncio.to_thread(browser.wait_for_text, f"Done: #{posted.id} acknowledged")
            kinds = [row["kind"] async for row in team.store.audit_rows()]
            assert "inbox_acknowledged" in kinds
            await asyncio.to_thread(_click, browser, f"act-{items['budget_exceeded']}")
            await asyncio.to_thread(browser.wait_for_text, "raised to $9.00", f"{devops}: released")
        finally:
            await asyncio.to_thread(browser.close)
        record = await team.store.get_task(task_id)
        assert record is not None and record.task.state.value == "claimed"
        view = await api.session_view(client, devops)
        assert view is not None and view.governor.hold is None
        # Each order was the founder's passkey's, as the founder's orders log says.
        logged = await team.store.founder_orders(task_id)
        assert any("passkey 'phone'" in o["reason"] for o in logged), logged


async def _enroll(browser: Browser, env: dict[str, str], url: str) -> None:
    """`tether founder passkey add`, its link opened and registered in the browser."""
    add = await asyncio.create_subprocess_exec(
        *TETHER, "founder", "passkey", "add", "--name", "phone", "--gateway", url,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert add.stdout is not None
    await asyncio.wait_for(add.stdout.readline(), 60)
    link = (await asyncio.wait_for(add.stdout.readline(), 60)).decode().strip()
    await asyncio.to_thread(browser.open, link)
    await asyncio.to_thread(browser.wait_for_text, "Register a passkey named phone")
    await asyncio.to_thread(_click, browser, "register")
    await asyncio.to_thread(browser.wait_for_text, "Registered.")
    out, err = await asyncio.wait_for(add.communicate(), 60)
    assert add.returncode == 0 and "enrolled passkey phone" in out.decode(), err.decode()


def _verify_in_a_clone(
    repo: Path, clone: Path, signers: Path, tag: str
) -> subprocess.CompletedProcess[str]:
    """git verify-tag, as anyone runs it, in a fresh clone of the service's shared remote."""
    remote = subprocess.run(
        ["git", "-C", str(repo), "remote", "get-url", "origin"], capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(["git", "clone", "-q", remote, str(clone)], check=True)
    return subprocess.run(
        ["git", "-C", str(clone), "-c", f"gpg.ssh.allowedSignersFile={signers}", "verify-tag", tag],
        capture_output=True,
        text=True,
    )


async def test_the_founder_rechecks_a_fixed_credential_from_the_phone(
    client: Client,
    fresh_db: str,
    tmp_path: Path,
    forge: FakeForge,
    temporal_address: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_home = tmp_path / "founder"
    _, public = generate(key_home)
    monkeypatch.setenv(TOKEN_ENV, REJECTED_TOKEN)
    extra = {"founder": {"public_key": public}}
    async with (
        running_team(client, fresh_db, tmp_path / "team", forge, extra) as team,
        running_gateway(client, team.store, team.config, team.task_queue, tmp_path / "gw") as gw,
    ):
        coder = team.agent("coder")
        view = await api.start_session(client, team.task_queue, SessionInput(agent=coder))
        assert view.state == "blocked"
        (item,) = [i for i in await team.store.inbox() if i.kind == "credential_blocked"]
        monkeypatch.setenv(TOKEN_ENV, VALID_TOKEN)  # the founder fixed the credential
        url = gw.url.replace("127.0.0.1", "localhost")
        env = clean_environment(
            TETHER_HOME=str(key_home),
            TEMPORAL_ADDRESS=temporal_address,
            DATABASE_URL=fresh_db,
            TETHER_TASK_QUEUE=team.task_queue,
        )
        browser = await asyncio.to_thread(Browser, **PHONE)
        try:
            await asyncio.to_thread(_authenticator, browser)
            await _enroll(browser, env, url)
            await _sign_in(browser, url)
            await asyncio.to_thread(browser.wait_for_text, "Recheck with passkey")
            await asyncio.to_thread(_click, browser, f"recheck-{item.id}")
            await asyncio.to_thread(browser.wait_for_text, f"Done: {coder}'s session is active")
        finally:
            await asyncio.to_thread(browser.close)
        after = await api.session_view(client, coder)
        assert after is not None and after.state == "active"


async def _sign_in(browser: Browser, url: str) -> None:
    await asyncio.to_thread(browser.open, f"{url}/founder")
    await asyncio.to_thread(browser.wait_for_text, "Sign in with passkey")
    await asyncio.to_thread(_click, browser, "signin")
    await asyncio.to_thread(browser.wait_for_text, "Inbox")
