"""Telling the founder: an inbox row in PostgreSQL first (never lost), then, if a webhook is
configured, one delivery workflow per row (`notify-<id>`) that posts it with retries.

The calling workflow never waits on the webhook: `notify` only writes the row and starts the
delivery workflow. The workflow id is derived from the row's id and duplicates are rejected,
so a row is delivered once even when the calling activity is retried."""

from __future__ import annotations

import logging
from urllib.parse import quote

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from activities.credentials import SecretUnavailable, read_secret
from activities.escalation import InvalidInput, escalating
from tether import constants
from tether.config import Notifications, TetherConfig
from tether.contracts import DeliveryInput, DeliveryOutcome, InboxItem
from tether.names import NOTIFY_WORKFLOW
from tether.store import Store

log = logging.getLogger("tether.notify")

WEBHOOK_TIMEOUT_SECONDS = 10.0


def cockpit_page(item: InboxItem, cockpit: str | None) -> str | None:
    """The founder's cockpit page for the item (the gateway's `/founder`), when it is known."""
    if not cockpit:
        return None
    if item.kind == "deploy_approval":
        return f"{cockpit}/founder/deployments/{quote(item.subject, safe='')}"
    return f"{cockpit}/founder"


def webhook_text(item: InboxItem, cockpit: str | None = None) -> str:
    lines = [f"*Tether: {item.title}*"]
    if item.command:
        lines.append(f"To act: `{item.command}`")
    page = cockpit_page(item, cockpit)
    if page:
        lines.append(f"From your phone: {page}")
    if item.see:
        lines.append(f"See: `{item.see}`")
    return "\n".join(lines)


def webhook_body(item: InboxItem, cockpit: str | None = None) -> dict[str, object]:
    """Slack's incoming-webhook shape (`text`), plus the item's fields for other receivers."""
    return {
        "text": webhook_text(item, cockpit),
        "tether": {
            "id": item.id,
            "kind": item.kind,
            "subject": item.subject,
            "title": item.title,
            "command": item.command,
            "page": cockpit_page(item, cockpit),
        },
    }


async def notify(store: Store, settings: Notifications, item: InboxItem) -> tuple[int, bool]:
    """Post an inbox item once per key, then start its webhook delivery if a webhook is set.

    Returns the item's id and whether it was new. Called from activities: the delivery workflow
    is started with the activity's client on the activity's task queue."""
    item_id, new = await store.post_inbox(item)
    if settings.webhook is not None:
        delivery = DeliveryInput(
            inbox_id=item_id,
            kind=item.kind,
            subject=item.subject,
            attempts=settings.webhook_attempts,
            max_interval_seconds=settings.webhook_max_interval_seconds,
        )
        await start_delivery(activity.client(), activity.info().task_queue, delivery, item.title)
    return item_id, new


async def start_delivery(
    client: Client, task_queue: str, delivery: DeliveryInput, title: str
) -> bool:
    """Start the delivery workflow of one inbox row; False if it was started before. By its
    name: the workflow runs this module's activities, so importing it would be a circle."""
    try:
        await client.start_workflow(
            NOTIFY_WORKFLOW,
            delivery,
            id=constants.notify_workflow_id(delivery.inbox_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"Webhook: {title}"[:200],
        )
        return True
    except WorkflowAlreadyStartedError:
        return False


class NotifyActivities:
    def __init__(self, store: Store, config: TetherConfig, cockpit: str | None = None) -> None:
        self.store = store
        self.config = config
        # Where the founder's cockpit is (the gateway's URL): each webhook item links its page.
        self.cockpit = cockpit

    @activity.defn
    @escalating
    async def deliver_webhook(self, inp: DeliveryInput) -> None:
        """POST one inbox row to the webhook. A 5xx, 408, 429 or a network error is retried by
        the workflow's policy; any other 4xx means the URL or payload is wrong, so it is not."""
        webhook = self.config.notifications.webhook
        if webhook is None:
            raise InvalidInput("no webhook is configured ([notifications] webhook)")
        try:
            url = read_secret(webhook)
        except SecretUnavailable as exc:
            raise InvalidInput(f"the webhook URL cannot be read: {exc}") from exc
        attempt = activity.info().attempt
        item = await self.store.inbox_item(inp.inbox_id)
        if item is None:
            raise InvalidInput(f"inbox item {inp.inbox_id} does not exist")
        try:
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as http:
                response = await http.post(url, json=webhook_body(item, self.cockpit))
        except httpx.HTTPError as exc:
            # The exception text can carry the URL, which is a secret: only its type is kept.
            raise ApplicationError(
                f"webhook unreachable ({type(exc).__name__}) at attempt {attempt}"
            ) from None
        if response.is_success:
            return
        status = response.status_code
        retryable = status >= 500 or status in (408, 429)
        raise ApplicationError(
            f"webhook answered HTTP {status} at attempt {attempt}",
            type="WebhookRejected" if not retryable else "WebhookUnavailable",
            non_retryable=not retryable,
        )

    @activity.defn
    @escalating
    async def record_delivery(self, outcome: DeliveryOutcome) -> None:
        await self.store.mark_delivery(outcome.inbox_id, outcome.error)
