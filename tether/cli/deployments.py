"""Deployments: `deploy request|show|queue`, and the founder's `approve` and `reject`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tether.cli.common import (
    KEY_HELP,
    agent_option,
    api,
    founder_client,
    open_store,
    pass_mark,
    print_json,
)
from tether.config import Settings, load_config
from tether.contracts import (
    ENVIRONMENTS,
    DeployRequest,
    DeployState,
    DeployView,
)
from tether.errors import TetherError


def render_deploy(view: DeployView, trail: list[dict[str, Any]] | None = None) -> str:
    r = view.request
    commit = view.commit[:12] if view.commit else "?"
    lines = [
        f"deployment {view.deployment_id}: {view.state}",
        f"  {r.service} to {r.environment} at {r.ref} ({commit}), requested by {r.agent}",
    ]
    if view.state == DeployState.QUEUED:
        lock = "holds the lock" if view.holds_lock else "waits for the lock"
        approval = "approved" if view.approval else "waits for the founder's approval"
        if view.approval and view.approval.tag:
            approval += f" with {view.approval.tag}"
        lines.append(f"  {lock}; {approval} (tether approve {view.deployment_id})")
        if view.waiting_for:
            lines.append(f"  waits: {view.waiting_for}")
    for refusal in view.approval_refusals:
        lines.append(f"  approval refused: {refusal}")
    if view.reason:
        lines.append(f"  {view.reason}")
    if view.rollout:
        lines.append(f"  rollout: {view.rollout.summary}")
    for e in view.health:
        lines.append(f"  {pass_mark(e.passed)} health {e.name}: {e.summary}")
    for row in trail or []:
        detail = row["detail"].get("reason") or row["detail"].get("summary") or ""
        lines.append(f"  {row['at']:%H:%M:%S} {row['kind']:<18} {row['actor']:<10} {detail}")
    return "\n".join(lines)


async def cmd_deploy_request(args: argparse.Namespace, settings: Settings) -> int:
    req = DeployRequest(
        service=args.service,
        ref=args.ref,
        agent=args.agent,
        reason=args.reason,
        environment=args.env,
    )
    view = await api.request_deploy(await founder_client(settings), settings.task_queue, req)
    if args.json:
        print_json(view.model_dump(mode="json"))
    else:
        print(render_deploy(view))
    return 3 if view.state in (DeployState.REFUSED, DeployState.EXPIRED) else 0


async def cmd_deploy_show(args: argparse.Namespace, settings: Settings) -> int:
    view = await api.deploy_view(await founder_client(settings), args.deployment)
    store = await open_store(settings)
    try:
        trail = await store.audit_trail(deployment_id=args.deployment)
    finally:
        await store.pool.close()
    if args.json:
        print_json({"deployment": view.model_dump(mode="json"), "audit": trail})
    else:
        print(render_deploy(view, trail))
    return 0


async def cmd_deploy_queue(args: argparse.Namespace, settings: Settings) -> int:
    lock = await api.deploy_queue(await founder_client(settings), args.service, args.env)
    if args.json:
        print_json(lock.model_dump(mode="json"))
        return 0
    if lock.holder is None:
        print(f"{lock.service}: free")
    else:
        until = f", lease until {lock.lease_until:%H:%M:%S} UTC" if lock.lease_until else ""
        print(f"{lock.service}: held by {lock.holder.deployment_id} ({lock.holder.agent}){until}")
    for n, w in enumerate(lock.waiting, 1):
        print(f"  {n}. {w.deployment_id} ({w.agent}, since {w.requested_at:%H:%M:%S})")
    return 0


def _founder_tag(
    settings: Settings, view: DeployView, key: Any, by: str
) -> tuple[str | None, bool, str]:
    """The founder's signed staging tag on the deployment's commit, when the service wants one
    (`signed_tags`, the default): (tag, pushed, where)."""
    config = load_config(settings.config_path)
    service = config.services.get(view.request.service)
    if service is None:
        raise TetherError(
            f"service {view.request.service!r} is not in this machine's tether.toml: the "
            "approval's tag is made in the service's repository, which it names"
        )
    if not service.signed_tags:
        return None, False, ""
    repo = config.repositories[service.repository]
    tag, pushed = api.tag_approval(view, Path(repo.path), repo.remote, key, by)
    return tag, pushed, (repo.remote if pushed else repo.path) or repo.path


def _decide(decision: str) -> Callable[[argparse.Namespace, Settings], Awaitable[int]]:
    async def command(args: argparse.Namespace, settings: Settings) -> int:
        from datetime import timedelta

        from tether.trust.signing import PRIVATE_KEY_FILE, load_private, sign

        key = load_private(Path(args.key) if args.key else settings.home / PRIVATE_KEY_FILE)
        client = await founder_client(settings)
        view = await api.deploy_view(client, args.deployment)
        ttl = timedelta(minutes=args.expires_in) if getattr(args, "expires_in", None) else None
        # Refuses a deployment that is over before any tag is made.
        approval = api.prepare_approval(
            view, decision=decision, by=args.by, reason=args.reason or "", ttl=ttl
        )
        if decision == "approve":
            tag, pushed, where = _founder_tag(settings, view, key, args.by)
            if tag:
                said = f"signed tag {tag} on {(view.commit or '')[:12]}" + (
                    f", pushed to {where}" if pushed else f" (in {where}: no remote to push to)"
                )
                # With --print the approval's JSON is the output: the tag line goes aside.
                print(said, file=sys.stderr if getattr(args, "print", False) else sys.stdout)
                approval = approval.model_copy(update={"tag": tag})
        signed = sign(approval, key)
        if getattr(args, "print", False):
            # For the Web UI: send a signal named "approve" to the deployment with this input.
            print(json.dumps(signed.model_dump(mode="json")))
            return 0
        verdict = await api.submit_approval(client, args.deployment, signed)
        if not verdict.accepted:
            print(f"refused: {verdict.reason}", file=sys.stderr)
            return 3
        verb = "approved" if decision == "approve" else "rejected"
        what = f"{view.request.service} {view.request.ref} {(view.commit or '')[:12]}"
        print(f"{args.deployment} {verb} ({what}), valid until {signed.expires_at:%H:%M:%S} UTC")
        return 0

    return command


def register(sub: Any) -> None:
    """This module's commands, on the `tether` parser's subcommands."""
    deploy = sub.add_parser("deploy", help="deployments: request, show, queue")
    dsub = deploy.add_subparsers(dest="deploy_command", required=True, metavar="ACTION")
    p = dsub.add_parser("request", help="ask to deploy SERVICE at an exact commit, tag or branch")
    p.add_argument("service", help="the service, as tether.toml names it")
    p.add_argument("--ref", required=True, help="commit, tag or branch (resolved to a commit now)")
    agent_option(p, "the agent, as tether.toml names it")
    p.add_argument("--reason", default="", help="why (kept with the action)")
    p.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        default="staging",
        help="staging (default), or production: only a commit that ran healthy in staging for "
        "the service's soak_minutes",
    )
    p.add_argument("--json", action="store_true", help="the answer as JSON, for scripts")
    p.set_defaults(func=cmd_deploy_request)
    p = dsub.add_parser("show", help="a deployment, with its audit trail")
    p.add_argument("deployment", help="the deployment's id (deploy-SERVICE-...)")
    p.add_argument("--json", action="store_true", help="the answer as JSON, for scripts")
    p.set_defaults(func=cmd_deploy_show)
    p = dsub.add_parser("queue", help="who holds a service's deploy lock and who waits")
    p.add_argument("service", help="the service, as tether.toml names it")
    p.add_argument(
        "--env", choices=ENVIRONMENTS, default="staging", help="the environment (staging)"
    )
    p.add_argument("--json", action="store_true", help="the answer as JSON, for scripts")
    p.set_defaults(func=cmd_deploy_queue)

    said = {
        "approve": "approve a queued deployment with the founder's key: makes and pushes the "
        "founder's signed tag staging|production/<service>/<n> on its commit, then signs the "
        "approval",
        "reject": "reject a queued deployment with the founder's key and a reason: it ends "
        "without rolling out, and the reason goes into its audit",
    }
    for name, decision in (("approve", "approve"), ("reject", "reject")):
        p = sub.add_parser(name, help=said[name], description=said[name])
        p.add_argument("deployment", help="the deployment's id (deploy-SERVICE-...)")
        p.add_argument("--key", help=KEY_HELP)
        p.add_argument("--by", default="founder", help="who acts (kept with the action)")
        p.add_argument("--reason", required=decision == "reject", help="why (kept in the audit)")
        if decision == "approve":
            p.add_argument(
                "--expires-in",
                type=float,
                metavar="MINUTES",
                help="how long the approval stays valid (default: the service's approval_ttl)",
            )
            p.add_argument(
                "--print",
                action="store_true",
                help="print the signed approval (JSON) instead of sending it: paste it into the "
                "Web UI as the input of a signal named 'approve'",
            )
        p.set_defaults(func=_decide(decision))
