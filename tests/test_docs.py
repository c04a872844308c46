"""README.md stays a card, and the docs it leads to stay true to the repository.

The README is the Space card: short, the two commands CI runs, links into docs/. Everything the
docs point at (pages, headings, images, files and Python names in backticks) must exist, so a
page that moves or a function that is renamed fails here instead of leaving a dead reference.
"""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = sorted((REPO / "docs").glob("*.md"))
MAX_LINES = 200
MAX_BYTES = 12 * 1024
RUN_COMMAND = "pip install -r requirements.txt && python app.py"

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
PATH = re.compile(r"[\w.-]+(?:/[\w.-]+)*(?:\.\w+|/)")  # a file with its suffix, or a folder/
# Where quoted paths are checked: the source folders and top-level files, not what runs write
# (artifacts/, caches), which a test may or may not have made yet.
SOURCES = {"convenet", "ui", "tests", "benchmarks", "scripts", "docs", "precomputed", "examples"}
TOP = SOURCES | {".ci"} | {p.name for p in REPO.iterdir() if p.is_file()}
DOTTED = re.compile(r"(?:convenet|ui)(?:\.\w+)+")
TEST_REF = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def prose(path: Path) -> str:
    """The page without its fenced code blocks (a code sample is not a link)."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and the Hub make it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in prose(path).splitlines() if line.startswith("#")}


def links(path: Path) -> list[str]:
    """Relative link targets of a page (web addresses and mail left out)."""
    found = [match.group(1) for match in LINK.finditer(CODE.sub("", prose(path)))]
    return [target for target in found if not re.match(r"[a-z]+:", target)]


def test_the_readme_is_a_card() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_LINES, "move the detail into a page under docs/"
    assert len(text.encode("utf-8")) <= MAX_BYTES, "move the detail into a page under docs/"


def test_the_card_has_the_two_commands_and_ci_runs_the_same_tests() -> None:
    """The first block under "Two commands" runs the app, the second runs the tests, and CI's
    script runs exactly that test command."""
    section = README.read_text(encoding="utf-8").split("## Two commands", 1)[1].split("\n## ")[0]
    blocks = re.findall(r"^```bash\n(.*?)\n```", section, re.S | re.M)
    assert len(blocks) == 2
    run_app, run_tests = blocks
    assert run_app == RUN_COMMAND
    assert "pytest" in run_tests
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert run_tests in ci_lines


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    """Every link and image of the page points at a file of the repository, and a #part of it
    at one of that page's headings."""
    dead = []
    for target in links(page):
        name, _, anchor = target.partition("#")
        goal = (page.parent / name).resolve() if name else page
        if not goal.exists() or (anchor and goal.suffix == ".md" and anchor not in anchors(goal)):
            dead.append(target)
    assert dead == []


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    seen, todo = set(), [README]
    while todo:
        page = todo.pop()
        for target in links(page):
            goal = (page.parent / target.partition("#")[0]).resolve()
            if goal.suffix == ".md" and goal.is_file() and goal not in seen:
                seen.add(goal)
                todo.append(goal)
    assert [p.name for p in PAGES if p.resolve() not in seen] == []


@cache
def defined_names(module: Path) -> dict[str, set[str]]:
    """Top-level names of a module, each with the names its class body defines."""
    names: dict[str, set[str]] = {}
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {
                getattr(item, "name", None) or getattr(getattr(item, "target", None), "id", "")
                for item in node.body
            }
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names[node.name] = set()
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update({t.id: set() for t in targets if isinstance(t, ast.Name)})
    return names


def resolves(dotted: str) -> bool:
    """``convenet.models.loading.package_weights`` or ``ui.server.App.method``: a module
    of the repository and names it defines (read, not imported)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = REPO.joinpath(*parts[:cut]).with_suffix(".py")
        if module.is_file():
            rest = parts[cut:]
            if not rest:
                return True
            names = defined_names(module)
            return rest[0] in names and (len(rest) == 1 or rest[1] in names[rest[0]])
        if REPO.joinpath(*parts[:cut]).is_dir():
            return cut == len(parts)
    return False


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.relative_to(REPO).as_posix())
def test_files_and_python_names_in_backticks_exist(page: Path) -> None:
    """A path into the repository (``convenet/search/recipes.py``, ``ui/``), a dotted name
    (``convenet.features.extract.extract_features``) or a test (``tests/test_x.py::test_y``)
    quoted in the prose exists."""
    missing = []
    for quoted in CODE.findall(prose(page)):
        parts = quoted.split("/")
        placeholder = any(part.isupper() for part in parts)  # precomputed/NAME/images/
        is_path = PATH.fullmatch(quoted) and parts[0] in TOP and not placeholder
        if is_path and not (REPO / quoted).exists():
            missing.append(quoted)
        missing += [name for name in DOTTED.findall(quoted) if not resolves(name)]
        for path, test in TEST_REF.findall(quoted):
            if not (REPO / path).is_file() or test not in defined_names(REPO / path):
                missing.append(f"{path}::{test}")
    assert missing == []


def test_the_configuration_table_lists_exactly_the_settings_the_app_reads() -> None:
    """docs/configuration.md says it lists every variable: each ``CONVENET_*`` one that
    ``convenet/settings.py`` reads has a row, and no row names one that nothing reads."""
    from convenet import settings

    read = {f"CONVENET_{field.name.upper()}" for field in fields(settings.Settings)}
    read |= set(re.findall(r'"(CONVENET_[A-Z0-9_]+)"', Path(settings.__file__).read_text()))
    table = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(CONVENET_[A-Z0-9_]+)` \|", table, re.M))
    assert sorted(read - rows) == [] and sorted(rows - read) == []


def test_the_recipe_tables_are_what_the_measured_results_make() -> None:
    """docs/retrieval.md's recipe tables come from convenet/data/recipe_scores.json, which
    scripts/choose_recipe.py wrote with the choice in convenet/data/recipes.json."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location(
        "choose_recipe", REPO / "scripts/choose_recipe.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    results = json.loads(script.RESULTS.read_text(encoding="utf-8"))
    page = (REPO / "docs" / "retrieval.md").read_text(encoding="utf-8")
    assert f"{script.START}\n{script.render(results)}\n{script.END}" in page
    choice = json.loads((REPO / "convenet/data/recipes.json").read_text(encoding="utf-8"))
    assert results["choice"] == choice
