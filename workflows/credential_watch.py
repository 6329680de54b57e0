"""Credential watch: run by a Temporal Schedule (`tether-credential-watch`), it reminds the founder
of credentials nearing expiry — declared dates, and those observed by probes (GitHub's expiry
header, a JWT's exp) — once per credential and threshold; and it looks at every service's
staging tags, so a tag someone else pushed reaches the founder even if no deployment names it
(patch `watch-deploy-tags`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.deploy import DeployActivities
    from activities.sessions import SessionActivities
    from tether.contracts import ExpiryReminderInput, TagWatchInput
    from workflows import retry


@workflow.defn
class CredentialWatchWorkflow:
    @workflow.run
    async def run(self) -> list[str]:
        posted: list[str] = await workflow.execute_activity_method(
            SessionActivities.remind_expiring_credentials,
            ExpiryReminderInput(now=workflow.now()),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=retry.bounded(5),
        )
        if workflow.patched("watch-deploy-tags"):
            refused: list[str] = await workflow.execute_activity_method(
                DeployActivities.watch_deploy_tags,
                TagWatchInput(now=workflow.now()),
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=retry.bounded(3),
            )
            posted += [f"tag:{tag}" for tag in refused]
        return posted
