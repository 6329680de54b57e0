"""The README fits a screen or two and leads into the docs site; the site's Python client
examples run as written, against the real servers; its layout table is the repository's."""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.worker import Worker

from tests.support import keys
from tests.support.helpers import clean_environment

ROOT = Path(__file__).resolve().parent.parent


CLIENT_PAGE = ROOT / "docs" / "reference" / "python-client.md"


def _examples() -> list[str]:
    section = CLIENT_PAGE.read_text().split("\n## API", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_fits_two_screens_and_leads_into_the_site() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 80, "the README is a front door: keep it to two screens"
    for command in ("./run up", "./run test"):
        assert f"\n{command} " in readme, f"the README's two commands: {command}"
    assert "`./run docs`" in readme
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert "docs/tutorial.md" in links
    for link in links:
        assert (ROOT / link).exists(), f"the README links to {link}, which does not exist"
    # The demo's verdicts it shows are the tutorial's, which the suite checks against the product.
    shown = re.findall(r"```text\n(.*?)```", readme, flags=re.S)[0].splitlines()
    tutorial = (ROOT / "docs" / "tutorial.md").read_text().splitlines()
    assert shown and all(line in tutorial for line in shown), shown


def test_the_python_client_page_shows_both_clients() -> None:
    examples = _examples()
    assert len(examples) == 2
    assert "from tether import client as tether" in examples[0]
    assert "from temporalio.client import Client" in examples[1]


@pytest.mark.parametrize("index", [0, 1], ids=["tether-client", "plain-temporalio"])
async def test_a_readme_example_runs_as_written(
    index: int, tmp_path: Path, temporal_address: str, worker: Worker
) -> None:
    script = tmp_path / "example.py"
    script.write_text(_examples()[index])
    task_id = f"readme-{uuid.uuid4().hex[:8]}"
    env = clean_environment(
        TEMPORAL_ADDRESS=temporal_address,
        TETHER_TASK_QUEUE=worker.task_queue,
        TASK_ID=task_id,
        TETHER_HOME=str(keys.write(tmp_path / "home", ("founder",))),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=str(tmp_path),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    printed = out.decode()
    assert f"{task_id} done: True" in printed, err.decode()
    # A crash while the interpreter finalises Temporal's native threads (sdk-python#300, the
    # known hazard) comes after the example has done and printed everything.
    assert proc.returncode in (0, -6, -11), err.decode()


def test_the_layout_table_names_every_package_and_only_real_paths() -> None:
    """The architecture page's layout table is the map a reader opens `tether/` with: every
    package has a row, and every path a row names exists."""
    page = ROOT / "docs" / "explanation" / "architecture.md"
    section = page.read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)
    for path in rows:
        assert (ROOT / path).exists(), f"the layout table names {path}, which does not exist"
    packages = {
        f"{p.parent.relative_to(ROOT).as_posix()}/"
        for p in [*(ROOT / "tether").glob("*/__init__.py"), *ROOT.glob("*/__init__.py")]
        if p.parent.name not in ("tests", "scripts")
    }
    missing = packages - set(rows)
    assert not missing, f"the layout table has no row for {sorted(missing)}"
