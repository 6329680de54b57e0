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
from pathlib import Path

from temporalio.client import Client

from tests.support.browser import Browser
from tests.support.cli import TETHER
from tests.support.deploy import deploy_rig
from tests.support.gateway import running_gateway
from tests.support.helpers import clean_environment
from tether.contracts import DeployState

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
        deploy_rig(client, fresh_db, tmp_path / "rig", signed_tags=False) as rig,
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
        finally:
            await asyncio.to_thread(browser.close)
        done = await rig.finish(view)
        assert done.state == DeployState.DONE, done.reason
        trail = await rig.store.audit_trail(deployment_id=view.deployment_id)
        accepted = [r for r in trail if r["kind"] == "approval_accepted"]
        assert accepted and "passkey 'phone'" in accepted[0]["detail"]["reason"]
