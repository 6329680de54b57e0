"""The docs site: it builds strict (a broken link, a missing page or reference fails it), and a
reader who follows the tutorial and the how-to guides types exactly what the pages show and sees
what they show, against the real stack `./run up` brings up (tests/support/docs.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.support.docs import Reader
from tether import constants
from tether.config import ENVIRONMENT_VARIABLES
from tether.ops.stack import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The pages whose commands a reader types, in the order the site gives them.
# raise-a-budget restarts the stack, so it comes last.
FOLLOWED = [
    "tutorial.md",
    "how-to/task-checks.md",
    "how-to/add-an-agent.md",
    "how-to/rotate-keys.md",
    "how-to/prune-a-year.md",
    "how-to/approve-from-phone.md",
    "how-to/cluster-or-cloud.md",
    "how-to/raise-a-budget.md",
]


def test_the_site_builds_strict_with_no_warning(tmp_path: Path) -> None:
    started = time.monotonic()
    # As `./run docs` builds it (the two variables silence MkDocs' and Material's notices
    # about their next versions, which are not about this site).
    quiet = {"NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, **quiet},
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    said = [ln for ln in built.stderr.splitlines() if not ln.startswith("INFO ")]
    assert said == [], built.stderr
    print(f"docs built in {time.monotonic() - started:.1f} s")
    site = tmp_path / "site"
    # The reference made from the code is there: every command, every tether.toml table.
    cli = (site / "reference" / "cli.html").read_text()
    assert "tether task submit" in cli and "tether founder passkey add" in cli
    toml = (site / "reference" / "tether-toml.html").read_text()
    assert "agents.run" in toml and "stop_grace_seconds" in toml
    assert "read_brief" in (site / "reference" / "mcp.html").read_text()
    assert "tether.client.connect" in (site / "reference" / "python-client.html").read_text()
    # Every environment variable Tether reads is on the environment page.
    environment = (DOCS / "reference" / "environment.md").read_text()
    missing = [v for v in ENVIRONMENT_VARIABLES if f"`{v}`" not in environment]
    assert missing == [], f"docs/reference/environment.md does not say what these are: {missing}"


async def test_a_reader_follows_the_tutorial_and_the_how_tos(tmp_path: Path) -> None:
    home = tmp_path / "reader"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "TETHER_"))}
    env.pop("DATABASE_URL", None)
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}")
    # The stack's own ports, as a reader with other servers on the defaults would choose them
    # (the suite runs other stacks beside this one); the pages show the defaults, with `...`.
    ports = {
        "TETHER_TEMPORAL_PORT": constants.TEMPORAL_PORT,
        "TETHER_UI_PORT": constants.TEMPORAL_UI_PORT,
        "TETHER_HTTP_PORT": constants.TEMPORAL_HTTP_PORT,
        "TETHER_POSTGRES_PORT": constants.POSTGRES_PORT,
    }
    chosen = {name: free_port() for name in ports}
    gateway = free_port()
    env.update({name: str(port) for name, port in chosen.items()})
    env["TETHER_GATEWAY_BIND"] = f"127.0.0.1:{gateway}"
    # What the reader sees is compared with the page as if on the defaults.
    defaults = {f":{chosen[n]}": f":{ports[n]}" for n in ports}
    defaults[f":{gateway}"] = f":{constants.GATEWAY_PORT}"
    reader = Reader(cwd=ROOT, env=env, home=home, rewrite=defaults)
    try:
        for page in FOLLOWED:
            await reader.follow(DOCS / page)
    finally:
        await reader.stop()
    assert len(reader.ran) > 10


def test_every_setting_and_task_key_says_what_it_sets() -> None:
    """The generated reference has a description for each key of tether.toml and of a task file
    (a key added without one fails here, not in a reader's hands)."""
    from tether.config import TetherConfig
    from tether.contracts import TaskSpec

    missing = []
    for model in (TetherConfig, TaskSpec):
        schema = model.model_json_schema()
        parts = dict(schema.get("$defs", {}))
        if model is TaskSpec:
            parts["TaskSpec"] = schema
        for name, part in parts.items():
            for key, field in part.get("properties", {}).items():
                if key == "kind" and name.endswith("Check"):
                    continue  # the check's kind is its table's title
                if "description" not in field:
                    missing.append(f"{name}.{key}")
    assert missing == [], f"settings with no description: {sorted(set(missing))}"
