"""The layout tells who runs each piece; this test holds the import rules of every layer, and
that the names the hook and the workflows share are the workflows' real names."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from temporalio import workflow

from tether import names

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names) | {"__future__"}

# Layer -> the top-level packages and Tether modules it may import (beyond the standard library).
RULES: dict[str, set[str]] = {
    # Standard library only: the hook and the workflows both import these.
    "tether/names.py": set(),
    "tether/errors.py": set(),
    # A hook runs on every tool call: no third-party import (not even pydantic).
    "tether/hook": {"tether.names", "tether.errors", "tether.hook"},
    "tether/contracts": {"pydantic", "tether.names", "tether.contracts"},
    "tether/core": {"pydantic", "tether.names", "tether.errors", "tether.contracts", "tether.core"},
    # The founder's read commands (tether/cli/cockpit.py) answer with these alone: neither
    # pydantic nor the Temporal SDK (a test of the commands holds what they import at run time).
    "activities/reads.py": {"asyncpg", "tether.names", "tether.errors"},
    "tether/status.py": {"tether.names"},
    "tether/limits.py": set(),
    "tether/cli/render.py": {"tether.names"},
    # Signatures only, no I/O: the workflows verify seals with it (key files are tether.keys).
    "tether/seals.py": {"cryptography", "pydantic", "pydantic_core"},
    # Deterministic orchestration: activities only for their method references (passed through).
    "workflows": {
        "temporalio",
        "pydantic",
        "tether.names",
        "tether.constants",
        "tether.errors",
        "tether.contracts",
        "tether.core",
        "tether.seals",
        "workflows",
        "activities",
    },
}


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tether":
                found += [f"tether.{a.name}" for a in node.names]
            else:
                found.append(node.module)
    return found


def _allowed(module: str, allowed: set[str]) -> bool:
    if module.split(".")[0] in STDLIB:
        return True
    return any(module == a or module.startswith(f"{a}.") for a in allowed)


def _files(layer: str) -> list[Path]:
    target = ROOT / layer
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(RULES))
def test_each_layer_imports_only_what_it_may(layer: str) -> None:
    files = _files(layer)
    assert files, f"{layer} has no modules"
    wrong = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in _imports(path)
        if not _allowed(module, RULES[layer])
    ]
    assert not wrong, "\n".join(wrong)


def test_nothing_imports_the_cli_and_io_libraries_stay_at_the_edges() -> None:
    wrong = []
    for path in [*ROOT.glob("*.py"), *(ROOT / "tether").rglob("*.py"), *ROOT.glob("*/*.py")]:
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("tests/", "scripts/", ".venv/")):
            continue
        for module in _imports(path):
            cli = module == "tether.cli" or module.startswith("tether.cli.")
            if cli and not rel.startswith(("tether/cli/", "tether/entry.py")):
                wrong.append(f"{rel} imports {module}")
            # httpx and asyncpg are side effects: activities (and the demo's simulated agents).
            if module.split(".")[0] in ("httpx", "asyncpg") and not rel.startswith(
                ("activities/", "tether/cli/demo.py")
            ):
                wrong.append(f"{rel} imports {module}")
    assert not wrong, "\n".join(wrong)


def test_no_test_module_imports_another() -> None:
    wrong = [
        f"{path.name} imports {module}"
        for path in (ROOT / "tests").rglob("*.py")
        if "node_modules" not in path.parts  # the agent CLIs the tests install with npm
        for module in _imports(path)
        if module.startswith("tests.test_")
    ]
    assert not wrong, "\n".join(wrong)


def test_shared_names_are_the_workflows_own() -> None:
    from workflows.deployment import DeploymentWorkflow
    from workflows.lock import ServiceLockWorkflow
    from workflows.process import PROCESS_ENDED, AgentProcessWorkflow
    from workflows.session import AgentSessionWorkflow
    from workflows.task import TaskWorkflow

    for name, cls in [
        (names.PROCESS_WORKFLOW, AgentProcessWorkflow),
        (names.TASK_WORKFLOW, TaskWorkflow),
        (names.SESSION_WORKFLOW, AgentSessionWorkflow),
        (names.DEPLOYMENT_WORKFLOW, DeploymentWorkflow),
        (names.LOCK_WORKFLOW, ServiceLockWorkflow),
    ]:
        assert workflow._Definition.must_from_class(cls).name == name
    session = workflow._Definition.must_from_class(AgentSessionWorkflow)
    updates = (names.SESSION_ATTACH, names.SESSION_END, names.SESSION_REPORT)
    assert set(updates) | {names.SESSION_CHECK_DELIVERABLE} <= set(session.updates)
    assert {names.SESSION_GATE, names.SESSION_VIEW} <= set(session.queries)
    assert PROCESS_ENDED in session.signals
