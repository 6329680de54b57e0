"""The README's Python client examples run as written, against the real servers."""

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


def _examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## The Python client", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_shows_both_clients() -> None:
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
    """The README's layout table is the map a reader opens `tether/` with: every package has a
    row, and every path a row names exists."""
    section = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
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
