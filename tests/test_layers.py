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
    "tether/hook": {"tether.names", "tether.errors", "tether.hook", "tether.runtimes"},
    # What Tether knows of each agent runtime, one module each: the hook process imports it.
    "tether/runtimes": {"tether.runtimes"},
    "tether/contracts": {"pydantic", "tether.names", "tether.contracts"},
    "tether/core": {"pydantic", "tether.names", "tether.errors", "tether.contracts", "tether.core"},
    # The founder's read commands (tether/cli/cockpit.py) answer with these alone: neither
    # pydantic nor the Temporal SDK (a test of the commands holds what they import at run time).
    "tether/store/reads.py": {"asyncpg", "tether.names", "tether.errors"},
    # The database library of the worker, the gateway, the client and the CLI: rows in and out,
    # as the contracts; nothing above it (no Temporal, no configuration, no activity).
    "tether/store": {
        "asyncpg",
        "pydantic",
        "tether.contracts",
        "tether.errors",
        "tether.names",
        "tether.store",
    },
    "tether/status.py": {"tether.names"},
    "tether/limits.py": set(),
    "tether/cli/render.py": {"tether.names"},
    # Signatures only, no I/O: the workflows verify seals with it (key files are tether.trust.keys).
    "tether/trust/seals.py": {"cryptography", "pydantic", "pydantic_core"},
    # Deterministic orchestration: activities only for their method references (passed through).
    "workflows": {
        "temporalio",
        "pydantic",
        "tether.names",
        "tether.constants",
        "tether.errors",
        "tether.contracts",
        "tether.core",
        "tether.trust.seals",
        "workflows",
        "activities",
        "tether.trust.passkeys",
    },
    # Side effects: never the orchestration above them (a workflow is started or asked by its
    # name, never its class), never the doors (gateway, CLI) nor the worker that hosts them.
    "activities": {
        "activities",
        "asyncpg",
        "httpx",
        "pydantic",
        "temporalio",
        "tether.budgets",
        "tether.client",
        "tether.config",
        "tether.constants",
        "tether.contracts",
        "tether.errors",
        "tether.hook",
        "tether.names",
        "tether.ops",
        "tether.trust.seals",
        "tether.trust.signing",
        "tether.trust.tags",
        "tether.store",
        "tether.runtimes",
        "tether.trust.passkeys",
        "tether.trust.passkey_tags",
    },
    # The agents' door: the client's protocol, the store, the hook's wire format; no workflow
    # class, no CLI, no worker.
    "tether/gateway": {
        "tether.store",
        "mcp",
        "pydantic",
        "starlette",
        "temporalio",
        "uvicorn",
        "tether.client",
        "tether.config",
        "tether.contracts",
        "tether.errors",
        "tether.gateway",
        "tether.hook",
        "tether.trust.keys",
        "tether.names",
        "tether.ops",
        "tether.trust.seals",
        "tether.runtimes",
        "webauthn",
        "tether.trust.passkeys",
        "tether.limits",
        "tether.trust.passkey_tags",
        "tether.trust.tags",
    },
    # The Python client: workflows by their classes (typed calls), the store for reads; never
    # the activities, the doors or the worker.
    "tether/client": {
        "cryptography",
        "pydantic",
        "temporalio",
        "workflows",
        "tether.budgets",
        "tether.client",
        "tether.config",
        "tether.constants",
        "tether.contracts",
        "tether.errors",
        "tether.hook",
        "tether.trust.keys",
        "tether.names",
        "tether.ops",
        "tether.trust.seals",
        "tether.status",
        "tether.trust.tags",
        "tether.store",
    },
    # Running Tether (the embedded stack, `tether up`, process plumbing): it starts the worker
    # and the gateway, and reads configuration; never the CLI, the activities or the workflows.
    # (The store's connection only to tell a PostgreSQL outage in a log line.)
    "tether/ops": {
        "opentelemetry",
        "temporalio",
        "worker",
        "tether.config",
        "tether.constants",
        "tether.contracts",
        "tether.errors",
        "tether.gateway",
        "tether.trust.keys",
        "tether.ops",
        "tether.runtimes",
        "tether.store.connection",
    },
    # The `tether` command, one module per noun: every room's door for the founder, the demo's
    # team (with its own worker); never a workflow class (workflows are asked by the client).
    "tether/cli": {
        "activities",
        "cryptography",
        "httpx",
        "pydantic",
        "temporalio",
        "worker",
        "tether",
    },
    # The worker process: the activities and the workflows it hosts, its keys and its servers.
    "worker.py": {
        "activities",
        "cryptography",
        "temporalio",
        "workflows",
        "tether.client",
        "tether.config",
        "tether.constants",
        "tether.ops",
        "tether.store",
        "tether.trust",
    },
    # The `tether` executable: a hook answered by the hook alone, the rest by the CLI.
    "tether/__init__.py": set(),
    "tether/__main__.py": {"tether.entry"},
    "tether/entry.py": {"tether.cli", "tether.hook"},
    # The Agent SDK's integration runs in the agent's process: its SDK and the hook's wire,
    # no Temporal, no pydantic.
    "tether/agent_sdk.py": {"claude_agent_sdk", "tether.agent_sdk", "tether.hook", "tether.names"},
    "tether/budgets.py": {
        "pydantic",
        "tether.config",
        "tether.contracts",
        "tether.limits",
        "tether.trust.signing",
    },
    "tether/constants.py": {"temporalio", "tether.names"},
    # Signatures and keys; the founder's tags are git's and ssh-keygen's (subprocesses).
    "tether/trust": {
        "cryptography",
        "pydantic",
        "pydantic_core",
        "tether.config",
        "tether.contracts",
        "tether.errors",
        "tether.trust",
    },
    "tether/trust/tags.py": {"cryptography", "tether.errors"},
    # Configuration and keys: below everything that reads them.
    "tether/config.py": {
        "pydantic",
        "tether.contracts",
        "tether.errors",
        "tether.names",
        "tether.ops.stackfile",
        "tether.trust.seals",
        "tether.runtimes",
    },
    "tether/trust/keys.py": {
        "cryptography",
        "tether.config",
        "tether.errors",
        "tether.trust.seals",
    },
    "tether/trust/signing.py": {
        "cryptography",
        "tether.contracts",
        "tether.trust.keys",
        "tether.trust.seals",
        "tether.trust.passkeys",
    },
}


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of the import nodes under `if TYPE_CHECKING:` (types only, nothing at run time)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    return skipped


def _imports(path: Path) -> list[str]:
    found = []
    tree = ast.parse(path.read_text())
    types_only = _type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in types_only:
            continue
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from tether.trust import seals`: the submodule seals, not the package.
            package = ROOT.joinpath(*node.module.split("."))
            for a in node.names:
                submodule = (package / f"{a.name}.py").exists() or (package / a.name).is_dir()
                found.append(f"{node.module}.{a.name}" if submodule else node.module)
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
            # httpx and asyncpg are side effects: activities, the store (asyncpg's only home)
            # and the demo's simulated agents.
            if module.split(".")[0] in ("httpx", "asyncpg") and not rel.startswith(
                ("activities/", "tether/store/", "tether/cli/demo.py")
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


def test_no_module_imports_itself_through_others() -> None:
    """No import circle, lazy imports (inside a function) counted: a circle hidden in a
    function is still two rooms that each need the other."""
    modules: dict[str, Path] = {}
    for package in ("tether", "activities", "workflows"):
        for path in (ROOT / package).rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    modules["worker"] = ROOT / "worker.py"
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for module in _imports(path):
            # `from tether.client import run_agent`: the module, or the package that has it.
            while module and module not in modules:
                module = module.rpartition(".")[0]
            if module and module != name:
                targets.add(module)
        graph[name] = targets
    circles = [c for c in _strongly_connected(graph) if len(c) > 1]
    assert not circles, "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in circles)


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    found.append(component)
    return found


def test_shared_names_are_the_workflows_own() -> None:
    from workflows.deployment import DeploymentWorkflow
    from workflows.lock import ServiceLockWorkflow
    from workflows.notify import NotifyWorkflow
    from workflows.process import PROCESS_ENDED, AgentProcessWorkflow
    from workflows.session import AgentSessionWorkflow
    from workflows.task import TaskWorkflow

    for name, cls in [
        (names.PROCESS_WORKFLOW, AgentProcessWorkflow),
        (names.NOTIFY_WORKFLOW, NotifyWorkflow),
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


def test_a_runtime_is_known_only_by_its_own_module() -> None:
    """A new runtime is one module in tether/runtimes/ and a line in its registry: no other
    product module names a runtime (beyond Claude Code, whose hook language is Tether's own)."""
    from tether import runtimes

    others = set(runtimes.NAMES) - {"claude-code"}
    wrong = []
    for path in [ROOT / "worker.py", *(ROOT / p for p in ("tether", "activities", "workflows"))]:
        for module in [path] if path.is_file() else sorted(path.rglob("*.py")):
            if "runtimes" in module.relative_to(ROOT).parts[:2]:
                continue
            for node in ast.walk(ast.parse(module.read_text())):
                if isinstance(node, ast.Constant) and node.value in others:
                    wrong.append(f"{module.relative_to(ROOT)}:{node.lineno} names {node.value!r}")
    assert not wrong, "\n".join(wrong)


def test_every_module_is_under_a_rule() -> None:
    """A module no rule covers could import anything: each one is in a layer above."""
    covered = {layer for layer in RULES}
    loose = []
    for path in [ROOT / "worker.py", *(ROOT / p for p in ("tether", "activities", "workflows"))]:
        for module in [path] if path.is_file() else sorted(path.rglob("*.py")):
            rel = module.relative_to(ROOT).as_posix()
            if not any(rel == layer or rel.startswith(f"{layer}/") for layer in covered):
                loose.append(rel)
    assert not loose, "modules under no import rule:\n" + "\n".join(loose)
