"""The audit chain: `audit verify` checks it against its anchors in Temporal and names the first
entry that was changed, removed or inserted, and a cut tail; `audit export` writes it as JSON
Lines, one entry a line with its hash, for a person or another tool."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

from tether.cli.common import founder_client, opened_store, print_json
from tether.config import Settings
from tether.errors import TetherError

# Anchors read by default: a day of them, one a minute.
ANCHORS = 1440


async def _anchors(settings: Settings, limit: int) -> list[Any]:
    from tether.contracts import AuditHead
    from tether.names import AUDIT_ANCHOR_WORKFLOW
    from tether.store.audit import Anchor

    client = await founder_client(settings)
    # This Tether's anchors: its task queue's (another Tether may share the namespace).
    query = (
        f"WorkflowType = '{AUDIT_ANCHOR_WORKFLOW}' AND ExecutionStatus = 'Completed' "
        f"AND TaskQueue = '{settings.task_queue}'"
    )
    ids = []
    async for execution in client.list_workflows(query, limit=limit):
        ids.append((execution.id, execution.run_id))
    gate = asyncio.Semaphore(16)

    async def one(workflow_id: str, run_id: str | None) -> Anchor | None:
        async with gate:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=AuditHead)
            head = await handle.result()
        if head.seq == 0:
            return None
        return Anchor(head.seq, head.hash, head.at, f"(workflow {workflow_id})")

    found = await asyncio.gather(*(one(w, r) for w, r in ids))
    return [a for a in found if a is not None]


async def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from tether.store.audit import ChainCheck

    anchors = await _anchors(settings, args.anchors)
    check = ChainCheck(anchors)
    async with opened_store(settings) as store:
        async for row in store.audit_rows():
            check.add(row["seq"], row["body"], row["prev"], row["hash"])
    verdict = check.finish()
    if args.json:
        print_json(
            {
                "ok": verdict.ok,
                "entries": verdict.entries,
                "anchors": verdict.anchors,
                "problems": verdict.problems,
            }
        )
    elif verdict.ok:
        print(
            f"the audit chain verifies: {verdict.entries} entries, checked against "
            f"{verdict.anchors} anchors in Temporal"
        )
    else:
        for problem in verdict.problems:
            print(f"tether: the audit chain was changed: {problem}", file=sys.stderr)
    return 0 if verdict.ok else 1


async def cmd_audit_export(args: argparse.Namespace, settings: Settings) -> int:
    with contextlib.ExitStack() as closing:
        try:
            # A command's own output file: opened once, before anything is read.
            out = closing.enter_context(open(args.output, "w")) if args.output else sys.stdout  # noqa: ASYNC230
        except OSError as exc:
            raise TetherError(f"cannot write {args.output}: {exc.strerror}") from exc
        written = 0
        async with opened_store(settings) as store:
            async for row in store.audit_rows(after=args.after):
                entry = {**json.loads(row["body"]), "prev": row["prev"], "hash": row["hash"]}
                out.write(json.dumps(entry, sort_keys=True) + "\n")
                written += 1
    if args.output:
        print(f"wrote {written} audit entries to {args.output}")
    return 0


def register(sub: Any) -> None:
    """This module's commands, on the `tether` parser's subcommands."""
    audit = sub.add_parser(
        "audit", help="the audit chain: verify it against its anchors in Temporal, export it"
    )
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p = asub.add_parser(
        "verify",
        help="check every entry's hash and link, and the chain against its anchors in Temporal; "
        "name the first entry changed, removed or inserted (exit 1)",
    )
    p.add_argument(
        "--anchors",
        type=int,
        default=ANCHORS,
        metavar="N",
        help=f"the newest N anchors to check against (default {ANCHORS}: a day's)",
    )
    p.add_argument("--json", action="store_true", help="the answer as JSON, for scripts")
    p.set_defaults(func=cmd_audit_verify)
    p = asub.add_parser(
        "export", help="write the chain as JSON Lines: one entry a line, with its hash"
    )
    p.add_argument("--output", "-o", help="the file (default: standard output)")
    p.add_argument("--after", type=int, default=0, metavar="SEQ", help="only entries after SEQ")
    p.set_defaults(func=cmd_audit_export)
