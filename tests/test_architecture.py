"""The shape of the package, checked on its source: who may import whom, no import cycles, one
error base, folders small enough to hold in mind, the shared runtime helpers, and the "one way"
rules: one configuration base, one hashing module, SQL only behind store/, one progress bar, one
error path in the CLI."""

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


def _classes_defined_in_the_package() -> list[type]:
    import importlib

    found = []
    for name in _modules():
        module = importlib.import_module(name)
        found += [obj for _, obj in inspect.getmembers(module, inspect.isclass) if obj.__module__ == name]
    return found


#: Pydantic models that are not configurations, and why.
RECORDS = {
    "jungle.export.camtrap_dp.CamtrapResult": "what an export wrote, rendered as a table row",
    "jungle.export.megadetector.MegadetectorResult": "what an export wrote, rendered as a table row",
    "jungle.export.table.TableResult": "what an export wrote, rendered as a table row",
    "jungle.meta.manifest.*": "a saved model's manifest: a file validated as a whole, failing as ModelError",
}


def _is_record(cls: type) -> bool:
    name = f"{cls.__module__}.{cls.__qualname__}"
    return name in RECORDS or f"{cls.__module__}.*" in RECORDS


def test_every_configuration_derives_from_the_config_base():
    from pydantic import BaseModel

    from jungle.config import JungleConfig

    classes = _classes_defined_in_the_package()
    strays = [f"{c.__module__}.{c.__qualname__}" for c in classes
              if issubclass(c, BaseModel) and not issubclass(c, JungleConfig) and not _is_record(c)]
    assert not strays, f"pydantic models outside the config base (jungle.config.JungleConfig): {strays}"
    not_pydantic = [f"{c.__module__}.{c.__qualname__}" for c in classes
                    if c.__name__.endswith("Config") and not issubclass(c, JungleConfig)]
    assert not not_pydantic, f"configurations that are not JungleConfigs (dataclasses?): {not_pydantic}"
    own_keys = [f"{c.__module__}.{c.__qualname__}" for c in classes
                if issubclass(c, JungleConfig) and c is not JungleConfig and "key" in vars(c)]
    assert not own_keys, f"configurations with their own key() (override lineage() instead): {own_keys}"


def _source_files(exclude: tuple[str, ...] = ()) -> dict[str, ast.Module]:
    return {str(path.relative_to(ROOT)): ast.parse(path.read_text()) for path in _modules().values()
            if str(path.relative_to(ROOT)) not in exclude}


def _imported_modules(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_hashing_is_done_in_hashing_py_only():
    users = sorted(f for f, tree in _source_files(exclude=("hashing.py",)).items()
                   if "hashlib" in _imported_modules(tree))
    assert not users, f"hashlib outside jungle/hashing.py: {users}"


def test_progress_bars_come_from_the_progress_helper_only():
    users = sorted(f for f, tree in _source_files(exclude=("progress.py",)).items()
                   if "tqdm" in _imported_modules(tree))
    assert not users, f"tqdm outside jungle/progress.py (use progress.progress_bar): {users}"


#: Modules outside store/ that run SQL of their own, and why; none of it reads a workspace table.
SQL_OUTSIDE_STORE = {
    "features/aggregates/frame_stats.py": "per-class statistics of frame probabilities held in memory, on an "
                                          "in-memory DuckDB (no workspace table)",
    "features/aggregates/aggregate.py": "opens the in-memory DuckDB that frame_stats computes on, once per set",
    "features/aggregates/metadata.py": "window functions over the relation store.videos.readable_videos gives",
}
_SQL_CALLS = {"execute", "executemany", "sql", "query", "register", "unregister"}


def _sql_calls(tree: ast.Module) -> list[int]:
    """Lines of DuckDB calls: con.execute/executemany/sql/query/register/unregister, duckdb.connect
    (registry.register, the feature-set registry, is not DuckDB's)."""
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value.id if isinstance(node.func.value, ast.Name) else None
        duckdb_call = node.func.attr in _SQL_CALLS and receiver != "registry"
        if duckdb_call or (receiver, node.func.attr) == ("duckdb", "connect"):
            lines.append(node.lineno)
    return lines


def test_sql_runs_behind_store_functions():
    found = {f: _sql_calls(tree) for f, tree in _source_files().items() if not f.startswith("store/")}
    strays = {f: lines for f, lines in found.items() if lines and f not in SQL_OUTSIDE_STORE}
    assert not strays, f"SQL outside store/ (add a store function): {strays}"
    stale = [f for f in SQL_OUTSIDE_STORE if not found.get(f)]
    assert not stale, f"allowed SQL that is gone (remove it from SQL_OUTSIDE_STORE): {stale}"


def test_cli_errors_take_the_one_error_path():
    """Commands raise jungle errors; only the top-level group (and main, for errors outside a
    command) turn them into an exit."""
    tree = ast.parse((ROOT / "cli.py").read_text())
    allowed = {"invoke", "main"}
    wrong = []
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        if function.name == "_fail":
            wrong.append("a _fail helper")
        for node in ast.walk(function):
            exits = (isinstance(node, ast.Raise) and node.exc is not None and "Exit" in ast.unparse(node.exc)) or \
                (isinstance(node, ast.Call) and ast.unparse(node.func) in ("sys.exit", "exit", "_fail"))
            if exits and function.name not in allowed:
                wrong.append(f"{function.name} (line {node.lineno})")
    assert not wrong, f"exits outside the one error path in cli.py: {wrong}"


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
