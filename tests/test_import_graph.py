"""The import graph keeps to the flow: models -> data -> features -> search -> explain ->
facades -> UI, and ``app.py`` on top.

Every ``import`` counts, at the top of a module, inside a function or under ``TYPE_CHECKING``:
a lazy or type-only import is still a dependency. Three rules: no cycles among ``convenet``
modules; a stage package imports only from stages before it (and the shared helpers at the top
of ``convenet/``); ``ui/`` imports only the facades, the registries and the shared helpers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.quick

REPO = Path(__file__).resolve().parents[1]
STAGES = (
    "models",
    "data",
    "features",
    "search",
    "explain",
)  # the order data flows through the packages
SHARED = {  # helpers every stage may use; they import only each other
    "convenet",
    "convenet.disk_cap",  # one size cap over the cache's rebuildable files
    "convenet.errors",
    "convenet.lru",
    "convenet.memory",
    "convenet.paths",
    "convenet.priority",  # slow work at a lower CPU priority
    "convenet.settings",
}
FACADES = {"convenet.playground", "convenet.inspector", "convenet.lessons"}  # UI talks to
ENTRY_POINTS = {"convenet.cli", "convenet.__main__", "convenet.warmup"}
REGISTRIES = {  # plain data the UI lists: names, titles, descriptions
    "convenet.models.registry",
    "convenet.data.datasets",
    "convenet.data.catalog",  # the datasets a caller may see (registered, folders, own)
    "convenet.search.metrics",
    "convenet.search.recipes",
}


def module_name(path: Path) -> str:
    if path == REPO:  # the parent of ``app.py``: no package
        return ""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(folder: str) -> dict[str, Path]:
    return {module_name(path): path for path in sorted((REPO / folder).rglob("*.py"))}


CORE = modules("convenet")


def _resolve(name: str) -> str:
    """The convenet module an imported name lives in (``convenet.x.y`` may be a function)."""
    while name not in CORE and "." in name:
        name = name.rpartition(".")[0]
    return name


def imports(path: Path) -> Iterator[str]:
    """Every convenet module ``path`` imports when it runs, anywhere in the file."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):  # ``if TYPE_CHECKING:`` imports count too: a circle all the same
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "convenet" or name.startswith("convenet."):
                yield _resolve(name)


def stage(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in STAGES:
        return STAGES.index(parts[1])
    return None


def graph() -> dict[str, set[str]]:
    return {name: set(imports(path)) - {name} for name, path in CORE.items()}


def test_every_module_has_a_place() -> None:
    """A new module goes into a stage package, or is named here as shared, facade or entry."""
    placed = SHARED | FACADES | ENTRY_POINTS
    homeless = [m for m in CORE if stage(m) is None and m not in placed]
    homeless = [m for m in homeless if m.split(".")[-1] not in STAGES]  # package __init__s
    assert homeless == []


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each import cycle found by a depth-first walk, as the modules around it."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Imports against the flow: a stage uses only the stages before it; shared helpers use
    only each other; no stage uses a facade or the command line."""
    wrong = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            here, there = stage(source), stage(target)
            if source in SHARED and target not in SHARED:
                wrong.append(f"shared {source} -> {target}")
            elif here is not None and target in FACADES | ENTRY_POINTS:
                wrong.append(f"{source} -> facade/entry {target}")
            elif here is not None and there is not None and there > here:
                wrong.append(f"{source} ({STAGES[here]}) -> {target} ({STAGES[there]})")
    return wrong


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_no_upward_imports() -> None:
    assert upward(graph()) == []


def test_the_rules_see_a_violation() -> None:
    """Not vacuous: the real graph has edges, and a made-up cycle and upward import are found."""
    real = graph()
    assert sum(map(len, real.values())) > 50
    assert "convenet.models.loading" in real["convenet.features.extract"]
    bad = {
        "convenet.models.registry": {"convenet.search.ranking"},  # models -> search: upward
        "convenet.search.ranking": {
            "convenet.search.metrics",
            "convenet.playground",
        },  # stage -> facade
        "convenet.search.metrics": {"convenet.search.ranking"},  # a cycle with ranking
        "convenet.paths": {"convenet.data.images"},  # shared -> stage
    }
    (cycle,) = cycles(bad)
    assert (
        set(cycle) == {"convenet.search.metrics", "convenet.search.ranking"}
        and cycle[0] == cycle[-1]
    )
    assert len(upward(bad)) == 3


def detours(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(ui module, core module) for each import that goes around the facades and registries."""
    allowed = FACADES | REGISTRIES | SHARED
    return sorted((source, t) for source, targets in edges.items() for t in targets - allowed)


def test_ui_imports_only_facades_registries_and_shared_helpers() -> None:
    edges = {name: set(imports(path)) for name, path in modules("ui").items()}
    used = set().union(*edges.values())
    assert used >= FACADES  # not vacuous: the UI does reach the core, through both facades
    assert detours(edges) == []


def test_a_detour_is_seen() -> None:
    edges = {"ui.x": {"convenet.playground", "convenet.data.hub", "convenet.models.registry"}}
    assert detours(edges) == [("ui.x", "convenet.data.hub")]


def test_app_py_starts_the_ui_and_reaches_the_core_only_through_what_the_ui_may_use() -> None:
    """``app.py`` is the top: it imports ``ui`` and, from the core, only the facades,
    registries, shared helpers and the warm-up entry point."""
    edges = set(imports(REPO / "app.py"))
    assert "convenet.warmup" in edges  # not vacuous: it does reach the core
    assert sorted(edges - FACADES - REGISTRIES - SHARED - {"convenet.warmup"}) == []
