"""Telling the founder: an inbox row in PostgreSQL first (never lost), then the webhook if any."""

from __future__ import annotations

import asyncio
import logging

import httpx

from activities.credentials import SecretUnavailable, read_secret
from activities.store import Store
from tether.config import SecretRef
from tether.contracts import InboxItem

log = logging.getLogger("tether.notify")

WEBHOOK_ATTEMPTS = 3
WEBHOOK_TIMEOUT_SECONDS = 5.0


def webhook_text(item: InboxItem) -> str:
    lines = [f"*Tether: {item.title}*"]
    if item.action:
        lines.append(f"To act: `{item.action}`")
    return "\n".join(lines)


async def deliver(url: str, item: InboxItem) -> str | None:
    """POST a Slack-compatible message; returns None on success, else the last error."""
    error = "not attempted"
    for attempt in range(WEBHOOK_ATTEMPTS):
        try:
            async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
                response = await client.post(url, json={"text": webhook_text(item)})
            if response.is_success:
                return None
            error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        if attempt + 1 < WEBHOOK_ATTEMPTS:
            await asyncio.sleep(0.5 * 2**attempt)
    return f"webhook failed after {WEBHOOK_ATTEMPTS} attempts: {error}"


async def notify(store: Store, webhook: SecretRef | None, item: InboxItem) -> tuple[int, bool]:
    """Post an inbox item once per key; deliver it to the webhook when it is new.

    Returns the item's id and whether it was new."""
    item_id, new = await store.post_inbox(item)
    if new and webhook is not None:
        try:
            url = read_secret(webhook)
        except SecretUnavailable as exc:
            await store.mark_delivery(item_id, f"webhook {exc}")
            return item_id, new
        error = await deliver(url, item)
        if error:
            log.warning("inbox item %s: %s", item_id, error)
        await store.mark_delivery(item_id, error)
    return item_id, new
