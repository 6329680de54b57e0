"""Activities of deployments: read the service's plan, judge the founder's signed approvals,
guard against stale bases, take the cooldown slot, run the rollout commands, keep the audit
log and the record of what runs where, and queue on the service's lock."""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.checks import git, run_process
from activities.escalation import InvalidInput, escalating
from activities.notify import notify
from activities.secrets import known_secrets, redact
from activities.standing import passkey_standing
from tether import constants
from tether.config import TetherConfig
from tether.contracts import (
    ENVIRONMENTS,
    ApprovalVerdict,
    AuditInput,
    DeployPlan,
    DeployRequest,
    InboxItem,
    JudgeInput,
    LockInput,
    LockRequest,
    NoticeInput,
    RecordDeployInput,
    RolloutClaim,
    RolloutInput,
    RolloutResult,
    RolloutSlot,
    SoakInput,
    SoakVerdict,
    StaleInput,
    StaleVerdict,
    TagNotice,
    TagWatchInput,
)
from tether.errors import TetherError
from tether.names import LOCK_WORKFLOW
from tether.store import Store
from tether.trust import passkey_tags, passkeys, seals, tags
from tether.trust.seals import parse_public
from tether.trust.signing import verify


class DeployActivities:
    def __init__(self, store: Store, config: TetherConfig) -> None:
        self.store = store
        self.config = config

    @activity.defn
    @escalating
    async def deploy_plan(self, request: DeployRequest) -> DeployPlan:
        """The service's configuration and the exact commit the ref names, now."""
        configured = self.config.services.get(request.service)
        if configured is None:
            known = ", ".join(sorted(self.config.services)) or "none"
            raise InvalidInput(
                f"service {request.service!r} is not in tether.toml (services: {known})"
            )
        environment = request.environment
        if environment not in configured.environments():
            raise InvalidInput(
                f"service {request.service} has no {environment} environment: add "
                f"[services.{request.service}.{environment}] to tether.toml"
            )
        service = configured.settings(environment)
        repo = self.config.repositories[service.repository]
        kind = self._deploy_tag_kind(request)
        if kind is not None:
            # A deployment tag is read as the remote has it (where a pipeline reads it).
            try:
                await asyncio.to_thread(
                    tags.fetch_tags, Path(repo.path), repo.remote, kind, request.service
                )
            except TetherError as exc:
                activity.logger.warning("%s: %s", request.ref, exc)
        found = await git(
            repo.path, "rev-parse", "--verify", "--quiet", f"{request.ref}^{{commit}}"
        )
        commit = found.stdout.head.decode().strip()
        if found.exit_code != 0 or not commit:
            raise InvalidInput(
                f"ref {request.ref!r} is not a commit, tag or branch in repository "
                f"{service.repository} ({repo.path})"
            )
        await self._named_tag_holds(request, commit)
        soak = 0.0
        if environment == "production":
            assert configured.production is not None
            soak = configured.production.soak_minutes
            since, _ = await self.store.staging_history(request.service, commit)
            if since is None:
                raise InvalidInput(
                    f"commit {commit[:12]} ({request.ref}) has never run healthy in "
                    f"{request.service}'s staging: production takes only a commit that did, for "
                    f"{soak:g} minutes; deploy it to staging first (tether deploy request "
                    f"{request.service} --ref {request.ref})"
                )
        return DeployPlan(
            service=request.service,
            repository=service.repository,
            commit=commit,
            ref=request.ref,
            environment=environment,
            soak_minutes=soak,
            cooldown_minutes=service.cooldown_minutes,
            cooldown_mode=service.cooldown_mode,
            approval_ttl_minutes=service.approval_ttl_minutes,
            request_ttl_hours=service.request_ttl_hours,
            rollout_timeout_seconds=service.rollout_timeout_seconds,
            rollout_heartbeat_seconds=service.rollout_heartbeat_seconds,
            health_checks=list(service.health_checks),
            has_restart=bool(service.restart),
            has_rollback=bool(service.rollback),
        )

    async def _named_tag_holds(self, request: DeployRequest, commit: str) -> None:
        """A request whose ref is one of the service's deployment tags (`staging/<service>/<n>`,
        `production/<service>/<n>`) names a tag a pipeline would deploy: it must be the founder's.
        An agent's own tag is refused here, audited, in the founder's inbox, and the agent's
        session is told why."""
        kind = self._deploy_tag_kind(request)
        if kind is None:
            return
        problem = await self._tag_problem(request.service, request.ref, commit, kind)
        if problem is not None:
            await self._tag_refused(
                TagNotice(
                    service=request.service,
                    tag=request.ref,
                    problem=problem,
                    agent=request.agent,
                )
            )
            raise InvalidInput(
                f"{problem}. Deployment tags are the founder's alone: request the deployment "
                "with the commit or branch, and the founder's `tether approve` makes the tag"
            )

    def _deploy_tag_kind(self, request: DeployRequest) -> str | None:
        """The environment whose deployment tag the request's ref is, when the service's
        approvals are signed tags."""
        if not self.config.services[request.service].signed_tags:
            return None
        for kind in ENVIRONMENTS:
            if tags.tag_pattern(kind, request.service).match(request.ref):
                return kind
        return None

    @activity.defn
    @escalating
    async def staging_soak(self, inp: SoakInput) -> SoakVerdict:
        """Production's gate: the commit became what staging runs, healthy, and stayed so for
        `minutes` (it may have been replaced since, after that long)."""
        since, replaced = await self.store.staging_history(inp.service, inp.commit)
        short = inp.commit[:12]
        if since is None:
            return SoakVerdict(
                ok=False,
                reason=f"commit {short} has never run healthy in {inp.service}'s staging; "
                "deploy it to staging first",
            )
        ready_at = since + timedelta(minutes=inp.minutes)
        if replaced is not None and replaced < ready_at:
            ran = (replaced - since).total_seconds() / 60
            return SoakVerdict(
                ok=False,
                reason=f"commit {short} ran in {inp.service}'s staging for only {ran:.1f} "
                f"minutes before another commit replaced it; production needs "
                f"{inp.minutes:g} minutes there: deploy it to staging again",
            )
        if inp.now < ready_at:
            return SoakVerdict(
                ok=False,
                reason=f"commit {short} has run healthy in staging since {since:%H:%M:%S} UTC; "
                f"production may take it at {ready_at:%H:%M:%S} UTC ({inp.minutes:g} minutes "
                "in staging)",
                ready_at=ready_at,
            )
        return SoakVerdict(
            ok=True,
            reason=f"healthy in staging since {since:%Y-%m-%d %H:%M:%S} UTC "
            f"(at least {inp.minutes:g} minutes)",
        )

    @activity.defn
    @escalating
    async def judge_approval(self, inp: JudgeInput) -> ApprovalVerdict:
        """Accept only an approval the founder's key signed for exactly this deployment and
        commit, not expired. Every verdict is an audit row."""
        verdict = self._judge(inp)
        if verdict.accepted and inp.passkey is not None:
            standing = await passkey_standing(self.store, inp.passkey.enrollment.credential_id)
            name = inp.passkey.enrollment.name or "unnamed"
            verdict = (
                ApprovalVerdict(accepted=False, reason=standing, approval=inp.received)
                if standing is not None
                else ApprovalVerdict(
                    accepted=True,
                    reason=f"signed on the founder's device (passkey {name!r})",
                    approval=inp.received,
                )
            )
        approval = verdict.approval
        service = self.config.services.get(inp.service)
        if (
            verdict.accepted
            and approval is not None
            and approval.decision == "approve"
            and service is not None
            and service.signed_tags
        ):
            problem = await self._tag_problem(
                inp.service, approval.tag, inp.commit, inp.environment
            )
            if problem is not None:
                await self._tag_refused(
                    TagNotice(
                        service=inp.service,
                        tag=approval.tag,
                        problem=problem,
                        deployment_id=inp.deployment_id,
                    )
                )
                verdict = ApprovalVerdict(accepted=False, reason=problem, approval=approval)
            else:
                verdict = ApprovalVerdict(
                    accepted=True,
                    reason=f"{verdict.reason}, with the founder's tag {approval.tag}",
                    approval=approval,
                )
        detail = {"accepted": verdict.accepted, "reason": verdict.reason}
        if verdict.approval is not None:
            detail.update(
                decision=verdict.approval.decision,
                by=verdict.approval.by,
                commit=verdict.approval.commit,
                expires_at=verdict.approval.expires_at.isoformat(),
                tag=verdict.approval.tag,
            )
        await self.store.audit(
            inp.deployment_id,
            inp.service,
            "approval_accepted" if verdict.accepted else "approval_refused",
            verdict.approval.by if verdict.approval and verdict.accepted else "unverified",
            detail,
            inp.received_at,
        )
        return verdict

    async def _tag_problem(
        self, service_name: str, tag: str | None, commit: str, kind: str = "staging"
    ) -> str | None:
        """tag_problem, trusting the passkeys the founder enrolled besides the founder's key."""
        key_text = self.config.founder.key_text()
        lines = ""
        if key_text:
            founder = [parse_public(key_text)]
            for e in await self.store.enrolled_passkeys():
                if seals.signed_by(e.signature, e.payload(), founder) is None:
                    lines += passkey_tags.allowed_signer(tags.PRINCIPAL, e.point(), e.rp_id)
        return await asyncio.to_thread(self.tag_problem, service_name, tag, commit, kind, lines)

    def tag_problem(
        self,
        service_name: str,
        tag: str | None,
        commit: str,
        kind: str = "staging",
        passkeys: str = "",
    ) -> str | None:
        """Why `tag` is not the founder's signed `kind` tag (the environment's) on `commit` in
        the service's repository (fetched from its remote first, so a tag moved there shows);
        None when it is."""
        service = self.config.services[service_name]
        repo = self.config.repositories[service.repository]
        key_text = self.config.founder.key_text()
        if not key_text:
            return "no founder public key is configured ([founder] public_key in tether.toml)"
        if not tag:
            return (
                f"the approval names no founder-signed tag: approve with `tether approve`, which "
                f"makes and pushes {kind}/{service_name}/<n> on the commit"
            )
        if not tags.tag_pattern(kind, service_name).match(tag):
            return f"{tag!r} is not a {kind} tag of {service_name} ({kind}/{service_name}/<n>)"
        path = Path(repo.path)
        try:
            tags.fetch_tags(path, repo.remote, kind, service_name)
            return tags.verify_tag(path, tag, commit, parse_public(key_text), passkeys)
        except TetherError as exc:
            return str(exc)

    async def _tag_refused(self, notice: TagNotice) -> bool:
        """A tag that is not the founder's: audited, in the founder's inbox (once per tag and
        target), and told to the session of the agent it concerns. True when it is new."""
        service, tag, problem = notice.service, notice.tag, notice.problem
        who, target = "unknown", "-"
        if tag:
            repo = self.config.repositories[self.config.services[service].repository]
            who = await asyncio.to_thread(tags.tagger, Path(repo.path), tag)
            target = await asyncio.to_thread(tags.target, Path(repo.path), tag)
        agent = notice.agent or await self._requester(notice.deployment_id) or self._agent_of(who)
        item = InboxItem(
            key=f"tag:{service}:{tag or '-'}:{target}",
            kind="tag_refused",
            subject=service,
            title=f"{tag or 'an approval without a tag'} for {service} is not yours: {problem}",
            detail={
                "tag": tag,
                "made_by": who,
                "reason": problem,
                "target": target,
                "agent": agent,
            },
        )
        _, new = await notify(self.store, self.config.notifications, item)
        if new:
            await self.store.audit(
                notice.deployment_id or f"tag:{tag or '-'}",
                service,
                "tag_refused",
                who,
                {"tag": tag, "reason": problem, "agent": agent},
                None,
            )
        if agent and (new or notice.agent or notice.deployment_id):
            await self._tell_agent(agent, service, tag, problem)
        return new

    async def _requester(self, deployment_id: str | None) -> str | None:
        """The agent who requested the deployment (from the workflow's own record)."""
        if not deployment_id:
            return None
        rows = await self.store.audit_trail(deployment_id=deployment_id)
        for row in rows:
            if row["kind"] == "queued":
                return str(row["actor"])
        return None

    def _agent_of(self, tagger: str) -> str | None:
        """The configured agent a tagger line (`Name <email>`) names, by name, forge login or
        the email's local part; None when it names none. What a tagger says is the tagger's
        own claim: it picks who is told, never what is allowed."""
        words = {w.strip("<>").split("@")[0].lower() for w in tagger.split()}
        for agent in self.config.agents:
            if {agent.name.lower(), agent.login.lower()} & words:
                return agent.name
        return None

    async def _tell_agent(self, agent: str, service: str, tag: str | None, problem: str) -> None:
        text = (
            f"Tether refused {tag or 'a deployment approval'} for {service}: {problem}. "
            "staging/* and production/* tags are the founder's alone (tether approve makes "
            "them, signed); do not push deployment tags: request the deployment with "
            f"`tether deploy request {service} --ref COMMIT` and wait for the founder."
        )
        handle = activity.client().get_workflow_handle(constants.session_workflow_id(agent))
        try:
            await handle.signal("notice", NoticeInput(kind="tag_refused", text=text[:1000]))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            activity.logger.info("%s has no open session to tell about %s", agent, tag)

    @activity.defn
    @escalating
    async def watch_deploy_tags(self, inp: TagWatchInput) -> list[str]:
        """Every staging tag on every service's remote that is not the founder's (unsigned,
        another key, lightweight): audited and in the founder's inbox, once each, whether or
        not a deployment names it. Run at each credential-watch round."""
        found = []
        key_text = self.config.founder.key_text()
        if not key_text:
            return []
        founder = parse_public(key_text)
        for name, service in self.config.services.items():
            if not service.signed_tags:
                continue
            repo = self.config.repositories[service.repository]
            path = Path(repo.path)
            # Both kinds, whether or not production is configured: an agent's production tag
            # is as much a forgery to a pipeline that keys on it.
            for kind in ENVIRONMENTS:
                try:
                    await asyncio.to_thread(tags.fetch_tags, path, repo.remote, kind, name)
                    listed = await asyncio.to_thread(tags.tags, path, kind, name)
                except TetherError as exc:
                    activity.logger.warning("%s tags of %s not checked: %s", kind, name, exc)
                    continue
                for tag in listed:
                    problem = await asyncio.to_thread(tags.verify_tag, path, tag, None, founder)
                    if problem is None:
                        continue
                    notice = TagNotice(service=name, tag=tag, problem=problem)
                    if await self._tag_refused(notice):
                        found.append(tag)
        return found

    def _judge(self, inp: JudgeInput) -> ApprovalVerdict:
        approval = inp.received
        if inp.passkey is not None:
            problem = self._passkey_problem(inp)
        else:
            problem = verify(approval, self.config.founder.key_text())
        if problem is None:
            wanted = {
                "deployment": (approval.deployment_id, inp.deployment_id),
                "service": (approval.service, inp.service),
                "ref": (approval.ref, inp.ref),
                "commit": (approval.commit, inp.commit),
            }
            wrong = [
                f"{k} {got!r}, not {want!r}" for k, (got, want) in wanted.items() if got != want
            ]
            if wrong:
                problem = "the signed approval is for another deployment: " + ", ".join(wrong)
            elif approval.expires_at <= inp.received_at:
                problem = f"the approval expired at {approval.expires_at:%Y-%m-%d %H:%M:%S} UTC"
        if problem is not None:
            return ApprovalVerdict(accepted=False, reason=problem, approval=approval)
        return ApprovalVerdict(
            accepted=True, reason="signed by the founder's key", approval=approval
        )

    def _passkey_problem(self, inp: JudgeInput) -> str | None:
        """The passkey's proof, checked with the founder's key this worker's tether.toml names
        (the same verifier as the workflow's guard)."""
        proof = inp.passkey
        if proof is None or proof.approval != inp.received:
            return "the passkey's proof is for another approval"
        text = self.config.founder.key_text()
        if not text:
            return "no founder public key is configured ([founder] public_key in tether.toml)"
        challenge = passkeys.challenge_of(proof.approval.payload())
        return passkeys.verify(proof.enrollment, proof.assertion, challenge, [parse_public(text)])

    @activity.defn
    @escalating
    async def audit(self, inp: AuditInput) -> None:
        await self.store.audit(
            inp.deployment_id,
            inp.service,
            inp.kind,
            inp.actor,
            dict(inp.detail),
            inp.at,
            line=inp.line,
        )

    @activity.defn
    @escalating
    async def check_stale_base(self, inp: StaleInput) -> StaleVerdict:
        """Just before the rollout: the founder's tag still verifies and points at the commit,
        and the commit descends from the one running (`git merge-base --is-ancestor`)."""
        service = self.config.services.get(inp.service)
        if service is not None and service.signed_tags:
            problem = await self._tag_problem(inp.service, inp.tag, inp.commit, inp.environment)
            if problem is not None:
                await self._tag_refused(
                    TagNotice(
                        service=inp.service,
                        tag=inp.tag,
                        problem=problem,
                        deployment_id=inp.deployment_id,
                    )
                )
                return StaleVerdict(
                    ok=False, reason=f"the approval's tag no longer holds: {problem}"
                )
        deployed = await self.store.deployed(inp.service, inp.environment)
        if deployed is None:
            return StaleVerdict(ok=True, reason="nothing deployed yet")
        running = deployed[0]
        where = "" if inp.environment == "staging" else f" in {inp.environment}"
        repo = self.config.repositories[inp.repository]
        found = await git(repo.path, "merge-base", "--is-ancestor", running, inp.commit)
        if found.exit_code == 0:
            return StaleVerdict(ok=True, deployed=running, reason=f"descends from {running[:12]}")
        if found.exit_code == 1:
            return StaleVerdict(
                ok=False,
                deployed=running,
                reason=(
                    f"commit {inp.commit[:12]} does not descend from {running[:12]}, which "
                    f"{inp.service} runs{where} now (deployed as {deployed[1] or running[:12]}): "
                    "deploying it would roll back newer work; rebase onto it first"
                ),
            )
        error = found.stderr.head.decode(errors="replace").strip() or found.error or "git failed"
        return StaleVerdict(
            ok=False,
            deployed=running,
            reason=f"cannot tell whether {inp.commit[:12]} descends from {running[:12]}: {error}",
        )

    @activity.defn
    @escalating
    async def claim_rollout(self, inp: RolloutClaim) -> RolloutSlot:
        allowed, until, other, rolling = await self.store.claim_rollout(
            inp.service,
            inp.deployment_id,
            inp.at,
            inp.cooldown_minutes,
            inp.busy_until,
            inp.environment,
        )
        return RolloutSlot(allowed=allowed, until=until, other=other, rolling=rolling)

    @activity.defn
    @escalating
    async def run_step(self, inp: RolloutInput) -> RolloutResult:
        """Run the service's rollout, restart or rollback command, heartbeating while it runs.
        It may run again after a lost worker: the command must tolerate that."""
        service = self.config.services[inp.service].settings(inp.environment)
        template = {
            "rollout": service.rollout,
            "restart": service.restart,
            "rollback": service.rollback,
        }[inp.step]
        if not template:
            return RolloutResult(ok=True, summary=f"no {inp.step} command configured")
        values = {
            "service": inp.service,
            "ref": inp.ref,
            "commit": inp.commit,
            "deployment": inp.deployment_id,
            "environment": inp.environment,
            "tag": inp.tag or inp.ref,
        }
        try:
            command = template.format_map({k: shlex.quote(v) for k, v in values.items()})
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInput(
                f"services.{inp.service}.{inp.step}: the template {template!r} names {exc}, "
                "which is not one of {service} {ref} {commit} {deployment} {environment} {tag}"
            ) from exc
        cwd = service.cwd or self.config.repositories[service.repository].path
        environment = {
            **os.environ,
            "TETHER_SERVICE": inp.service,
            "TETHER_REF": inp.ref,
            "TETHER_COMMIT": inp.commit,
            "TETHER_DEPLOYMENT": inp.deployment_id,
            "TETHER_ENVIRONMENT": inp.environment,
            "TETHER_TAG": inp.tag or inp.ref,
        }
        started = time.monotonic()
        out = await run_process(
            command,
            cwd=cwd,
            time_limit=inp.timeout_seconds,
            heartbeat=activity.heartbeat,
            environment=environment,
        )
        took = int((time.monotonic() - started) * 1000)
        excerpt = redact(out.excerpt(), known_secrets(self.config))
        if out.timed_out:
            summary = f"{inp.step} timed out after {inp.timeout_seconds:g}s"
        elif out.exit_code is None:
            summary = f"{inp.step} could not run: {out.error}"
        elif out.exit_code != 0:
            summary = f"{inp.step} failed with exit code {out.exit_code}"
        else:
            summary = f"{inp.step} finished in {took / 1000:.1f}s"
        ok = out.exit_code == 0 and not out.timed_out
        return RolloutResult(
            ok=ok,
            exit_code=out.exit_code,
            summary=summary,
            output_excerpt=excerpt,
            duration_ms=took,
        )

    @activity.defn
    @escalating
    async def record_deployment(self, inp: RecordDeployInput) -> None:
        await self.store.record_deployment(
            inp.deployment_id,
            inp.service,
            inp.commit,
            inp.ref,
            inp.agent,
            inp.state.value,
            inp.at,
            inp.environment,
        )

    @activity.defn
    @escalating
    async def request_lock(self, req: LockRequest) -> None:
        """Queue on the lock of the service in the request's environment, starting the lock
        workflow if it is not running (by its name: the workflow runs these activities)."""
        lane = constants.deploy_lane(req.service, req.environment)
        # Started, then signalled: the signal carries the workers' seal in its own header
        # (a signal-with-start's header is the workflow's, not the signal's).
        handle = await activity.client().start_workflow(
            LOCK_WORKFLOW,
            LockInput(service=lane),
            id=constants.lock_workflow_id(req.service, req.environment),
            task_queue=activity.info().task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=f"One deployment at a time for {lane}",
        )
        await handle.signal("acquire", req)
