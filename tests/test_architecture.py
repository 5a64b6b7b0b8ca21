"""The shape of the package, checked on its source: who may import whom, no import cycles, one
error base, folders small enough to hold in mind, and the shared runtime helpers."""

from __future__ import annotations

import ast
import inspect
import subprocess
from pathlib import Path

import pytest

import jungle
from jungle import errors
from jungle.runtime import available_cores, torch_threads
from jungle.store.registry import source_commit

ROOT = Path(jungle.__file__).resolve().parent
STAGES = ("ingest", "features", "meta", "export", "review", "demo")


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``jungle.features.video.decode``)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", "bench", ".venv", "build") or rel.parts[0].startswith("."):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(["jungle", *parts])] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports anywhere in its body (function-level imports too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            candidates = [module] + [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        targets.update(c for c in candidates if c in known)
    return targets - {name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycles(graph):
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("source, forbidden", [
    ("store", STAGES + ("pipeline", "cli")),
    ("features", ("meta", "export", "review", "pipeline", "cli")),
    ("ingest", ("features", "meta", "export", "review", "pipeline", "cli")),
    ("meta", ("pipeline", "cli", "export", "review")),
    ("export", ("pipeline", "cli", "review")),
])
def test_layers_import_only_downwards(graph, source, forbidden):
    wrong = sorted(f"{a} imports {b}" for a, targets in graph.items() if _top(a) == source
                   for b in targets if _top(b) in forbidden
                   and not (source == "ingest" and b.startswith("jungle.features.video")))
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("jungle")):
                offenders += [f"{name}: {alias.name}" for alias in node.names
                              if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert not offenders, offenders


def test_every_exception_jungle_defines_derives_from_jungle_error():
    import importlib

    strays = []
    for name in _modules():
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (issubclass(obj, BaseException) and obj.__module__ == name
                    and not issubclass(obj, errors.JungleError)):
                strays.append(f"{name}.{obj.__name__}")
    assert not strays, strays


def test_no_folder_holds_more_than_3000_lines_of_modules_directly():
    sizes: dict[Path, int] = {}
    for path in _modules().values():
        sizes[path.parent] = sizes.get(path.parent, 0) + len(path.read_text().splitlines())
    big = {str(folder.relative_to(ROOT.parent)): lines for folder, lines in sizes.items()
           if lines > 3000 and folder != ROOT}
    assert not big, big


def test_torch_threads_restores_the_process_setting():
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    assert available_cores() >= 1


def test_source_commit_only_for_jungles_own_checkout(tmp_path):
    repo = tmp_path / "project"
    inner = repo / "venv" / "lib" / "jungle"
    inner.mkdir(parents=True)
    run = dict(cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "init", "-q"], **run)
    (repo / "a.txt").write_text("a")
    subprocess.run(["git", "add", "a.txt"], **run)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a"], **run)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], text=True, **run).stdout.strip()
    assert source_commit(repo) == head
    assert source_commit(inner) is None  # an installed jungle inside someone else's repository
    assert source_commit(tmp_path) is None
