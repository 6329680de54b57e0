"""The README's first command, as a founder on a fresh machine runs it: `tether up --demo` brings
the stack up from nothing and replays the seven incidents; `tether status` and `tether inbox` show
them; acting on an inbox item clears it; the Web UI, opened in a real headless Chromium, lists
the held workflows filtered by a Tether search attribute, with their summaries; `tether demo`
runs again against the same stack."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
from pathlib import Path
from urllib.parse import quote

from temporalio.client import Client

from tests.support import keys
from tests.support.browser import Browser
from tests.support.claude_code import BINARY, ensure_claude_code
from tests.support.cli import TETHER, cli
from tether.trust import tags
from tether.trust.signing import PRIVATE_KEY_FILE, load_private

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("TETHER_TEST_ARTIFACTS") or ROOT / "test-artifacts")
DEMO_DONE = "The stack stays up, serving the demo team's workflows"
TETHER_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d [\d:,]{12} (INFO|WARNING) tether[.\w]*: \S")


async def test_up_with_demo_catches_seven_incidents_and_the_cockpit_shows_them(
    up_env: dict[str, str],
) -> None:
    ensure_claude_code()  # the demo runs again with it as every agent, at the end
    # Its log goes to a file, read back only to say why it failed.
    log = Path(up_env["TETHER_HOME"]).parent / "up.log"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *TETHER, "up", "--demo", "first", env=up_env, stdout=asyncio.subprocess.PIPE, stderr=err
        )
    assert proc.stdout is not None
    try:
        seen: list[str] = []
        while not seen or DEMO_DONE not in seen[-1]:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=240)
            if not line:
                code = await asyncio.wait_for(proc.wait(), timeout=60)
                tail = log.read_text(errors="replace")[-3000:]
                raise AssertionError(
                    f"tether up --demo ended early (exit {code}):\n{''.join(seen)}\n{tail}"
                )
            seen.append(line.decode())
        out = "".join(seen)
        # The terminal holds Tether's report alone: the dev server's banner went to its log.
        assert out.startswith("Tether is up.\n"), out
        assert (Path(up_env["TETHER_HOME"]) / "temporal.log").read_text().startswith("Temporal CLI")
        await _check(up_env, out)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(proc.wait(), timeout=60)
            assert code == 0
    # ... and its log lines are Tether's own, from start to Ctrl-C: no library's, no traceback.
    said = log.read_text().splitlines()
    assert said and all(TETHER_LOG_LINE.match(line) for line in said), "\n".join(said)
    assert said[-1].endswith("INFO tether.up: stopped")


async def _check(env: dict[str, str], out: str) -> None:
    # --- the demo's own report: seven incidents, each caught, each with its time -------------
    assert "Tether is up." in out
    incidents = re.findall(r"^(\d)\. (.+?) \.+ (CAUGHT|MISSED) in (\d+\.\d\d) s$", out, re.M)
    assert [int(n) for n, *_ in incidents] == [1, 2, 3, 4, 5, 6, 7], out
    assert all(mark == "CAUGHT" for _, _, mark, _ in incidents), out
    assert "7 of 7 incidents caught by their guardrail." in out
    assert re.search(r"^\+ A task whose cost runs away \.+ CAUGHT in \d+\.\d\d s$", out, re.M)
    assert "warned above $3.00, paused at $6.00 (ceiling $5.00)" in out
    assert "stopped at attempt 5 of 23" in out
    assert re.search(r"^   in the Web UI: task-ingress-\w+, session-devops-\w+$", out, re.M)
    assert "does not descend from" in out and "the service still serves v2" in out
    tag = re.search(r"Tether demo (\w+):", out)
    assert tag is not None
    t = tag.group(1)
    coder, devops, security, marketing, analyst = (f"{r}-{t}" for r in ROLES)
    ui = re.search(r"Web UI:\s+(http://\S+)", out)
    assert ui is not None

    # --- the founder's tags: git agrees, run by hand in the demo's repository ----------------
    assert "Production took v2 after 3 s healthy in staging" in out
    assert f"with the founder's production/api-{t}/1" in out
    demo_repo = Path(env["TETHER_HOME"]) / "demo" / t / "app"
    for made in (f"staging/api-{t}/1", f"production/api-{t}/1"):
        said = await asyncio.to_thread(_verify_by_hand, env, demo_repo, made)
        assert said.returncode == 0, said.stderr
        assert 'Good "git" signature for founder' in said.stderr

    # --- tether status: a script's view (--json) and the founder's (plain when piped) --------
    code, raw, err = await cli(env, "status", "--json")
    assert code == 0, err
    status = json.loads(raw)
    agents = {a["agent"]: a for a in status["agents"]}
    assert agents[coder]["session"] == "active" and agents[coder]["task_id"] == f"checkout-{t}"
    # Asked live from the session workflow: the new session's 18,000 of 200,000 tokens, $0.05.
    assert agents[coder]["context_pct"] == 0.09 and agents[coder]["cost_usd"] == 0.05
    assert agents[devops]["hold"].startswith("loop: kubectl set failed 5 times")
    assert agents[security]["session"] == "blocked"
    assert "scanner" in agents[security]["blocker"]
    assert agents[marketing]["pseudo_work"] == 1 and agents[marketing]["sessions_ended"] == 1
    assert agents[analyst]["hold"].startswith(f"cost: task research-{t} has cost $6.00")
    tasks = {x["id"]: x["state"] for x in status["tasks"]}
    assert tasks[f"ingress-{t}"] == "blocked" and tasks[f"checkout-{t}"] == "claimed"
    assert tasks[f"research-{t}"] == "paused"
    deploys = {(d["ref"], d["state"]) for d in status["deployments"]}
    assert {("main", "done"), ("old-feature", "refused")} <= deploys
    assert any(c["name"] == "scanner" and not c["ok"] for c in status["credentials"])
    assert any(f"task ingress-{t} blocked by Tether's governor" in b for b in status["blockers"])
    assert any(p.startswith(marketing) for p in status["pseudo_work"])
    assert status["inbox_open"] >= 4 and status["problems"] == []
    code, plain, _ = await cli(env, "status")
    assert code == 0 and "\033[" not in plain
    assert re.search(rf"{coder}\s+active\s+checkout-{t}\s+9%\s+\$0\.05\s", plain), plain
    assert re.search(rf"{devops}\s+active\s+ingress-{t}\s", plain), plain

    # --- tether inbox: one command per item, newest first -----------------------------------
    code, inbox, _ = await cli(env, "inbox")
    assert code == 0
    assert f"-> tether task unblock ingress-{t}" in inbox
    assert f"-> tether resume research-{t}" in inbox
    assert f"-> fix credential scanner, then: tether session recheck {security}" in inbox
    assert f"[pseudo_work] {marketing}'s session ended without a deliverable" in inbox
    assert f"[deploy_refused] deployment deploy-api-{t}-" in inbox

    # --- the Web UI in a real browser, filtered by Tether's search attributes ----------------
    await asyncio.to_thread(_browse, ui.group(1), t)

    # --- acting on an item clears it: the founder unblocks the looping agent's task ---------
    # (signed with the founder's key the demo made; the demo's worker still serves the task)
    code, _unblocked, err = await cli(
        env, "task", "unblock", f"ingress-{t}", "--reason", "IAM fixed"
    )
    assert code == 0, err
    code, inbox, _ = await cli(env, "inbox")
    assert f"tether task unblock ingress-{t}" not in inbox

    # --- `tether demo` on its own, against the same stack, again ----------------------------
    code, again, err = await cli(env, "demo")
    assert code == 0, again + err
    assert err == "", err  # nothing from the libraries, the demo's gateway or its worker
    assert "7 of 7 incidents caught by their guardrail." in again

    # --- the same incidents with the real Claude Code CLI as every agent ----------------------
    # (given as a relative path: Tether resolves it, though each agent runs in its worktree)
    claude = os.path.relpath(BINARY)
    code, real, err = await cli(env, "demo", "--runtime", "claude-code", "--claude", claude)
    assert code == 0, real + err
    assert err == "", err  # no traceback for the process Tether ended mid-request, no warning
    assert "each agent is Claude Code" in real
    assert "7 of 7 incidents caught by their guardrail." in real
    assert "Tether ended the process before a third" in real
    assert "ran `kubectl set` 5 times of the 23" in real
    assert "the model was asked 0 times" in real


ROLES = ("coder", "devops", "security", "marketing", "analyst")
COLUMNS = ["Status", "Workflow ID", "Type", "TetherState", "TetherAgent", "TetherTask", "Start"]


def _verify_by_hand(env: dict[str, str], repo: Path, tag: str) -> subprocess.CompletedProcess[str]:
    """`git verify-tag` with an allowed-signers file naming only the founder's key."""
    key = load_private(Path(env["TETHER_HOME"]) / PRIVATE_KEY_FILE)
    signers = repo.parent / "allowed_signers"
    signers.write_text(tags.allowed_signers(key.public_key()))
    return subprocess.run(
        ["git", "-C", str(repo), "-c", f"gpg.ssh.allowedSignersFile={signers}", "verify-tag", tag],
        capture_output=True,
        text=True,
        check=False,
    )


def _browse(ui: str, t: str) -> None:
    columns = {"default": [{"label": c, "pinned": i < 2} for i, c in enumerate(COLUMNS)]}
    workflows = f"{ui}/namespaces/default/workflows"
    with Browser() as browser:
        # The list's columns include Tether's search attributes (a founder's saved choice).
        browser.before_load(
            "localStorage.setItem('namespace-workflow-table-columns', "
            f"{json.dumps(json.dumps(columns))});"
        )
        held = 'TetherState IN ("blocked", "paused")'
        browser.open(f"{workflows}?query={quote(held)}")
        text = browser.wait_for_text(f"task-ingress-{t}", f"session-security-{t}")
        row = re.search(
            rf"task-ingress-{t}\s+TaskWorkflow\s+blocked\s+devops-{t}\s+ingress-{t}", text
        )
        assert row, text
        assert re.search(
            rf"session-security-{t}\s+AgentSessionWorkflow\s+blocked\s+security-{t}", text
        )
        paused_row = rf"task-research-{t}\s+TaskWorkflow\s+paused\s+analyst-{t}\s+research-{t}"
        assert re.search(paused_row, text), text
        # The filter ran on the server: the list holds exactly the held workflows.
        rows = set(re.findall(r"Select Workflow (\S+)", text))
        assert rows == {f"task-ingress-{t}", f"session-security-{t}", f"task-research-{t}"}, text
        browser.screenshot(ARTIFACTS / "web-ui-blocked-workflows.png")

        query = "TetherService=" + json.dumps(f"api-{t}")
        browser.open(f"{workflows}?query={quote(query)}")
        text = browser.wait_for_text("DeploymentWorkflow", "ServiceLockWorkflow")
        rows = re.findall(r"Select Workflow (\S+)", text)
        # Staging's two deployments and its lock, and the promotion to production (whose
        # lock is `api-<t>/production`).
        assert sorted(r.split("-")[0] for r in rows) == ["deploy"] * 3 + ["lock"], text
        assert re.search(r"DeploymentWorkflow\s+refused", text) and re.search(
            r"DeploymentWorkflow\s+done", text
        )

        # A workflow at a glance: its summary, details and current details (a live query).
        browser.open(f"{workflows}/task-ingress-{t}")
        browser.wait_for_text("User Metadata")
        link = browser.evaluate(
            "Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))"
            ".find(h => h && h.endsWith('/user-metadata'))"
        )
        assert isinstance(link, str), "no User Metadata tab"
        browser.open(ui + link)
        browser.wait_for_text(
            f"Task ingress-{t}: Roll the new ingress config out to prod",
            "Checks:",
            "blocked",
        )
        browser.screenshot(ARTIFACTS / "web-ui-task-summary.png")


async def test_a_guardrail_that_does_not_act_is_reported_missed(
    client: Client, fresh_db: str, tmp_path: Path
) -> None:
    """The demo's verdicts come from what the workflows did: with the anti-loop limit raised
    above 23, the kubectl incident is MISSED (and `tether demo` would exit 1); the others are
    still caught."""
    import worker as tether_worker
    from tether.cli.demo import DemoResult, build_world, run_incidents
    from tether.store import Store, connect_pool, migrate

    world, _ = build_world(tmp_path / "home")
    world.config.thresholds.loop_limit = 50
    pool = await connect_pool(fresh_db)
    try:
        await migrate(pool)
        async with tether_worker.build_worker(
            client, world.task_queue, Store(pool), world.config, keys.KEYS
        ):
            incidents = await run_incidents(client, world, lambda inc: None)
    finally:
        await pool.close()
        world.api.stop()
    caught = {i.number: i.caught for i in incidents}
    assert caught == {1: True, 2: True, 3: True, 4: True, 5: True, 6: False, 7: True, 8: True}, [
        i.what for i in incidents
    ]
    assert incidents[5].what.startswith("stopped at attempt None of 23")
    result = DemoResult(world.tag, world.folder, incidents)
    assert not result.ok and result.caught == 6 and len(result.seven) == 7
