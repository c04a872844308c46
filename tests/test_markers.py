"""``quick`` on a module selects its tests that are neither slow nor browser ones, for ``-m quick``
and ``-m "not quick"`` alike (checked in a pytest run of its own on a module made here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.app_server import REPO

pytestmark = pytest.mark.quick

MODULE = """
import pytest

pytestmark = pytest.mark.quick


def test_logic():
    pass


@pytest.mark.slow
def test_starts_the_app():
    pass


@pytest.mark.browser
def test_drives_chromium():
    pass
"""


def selected(folder: Path, expression: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + ["-m", expression, "test_mixed.py"],
        cwd=folder,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    return sorted(line.split("::")[1] for line in done.stdout.splitlines() if "::" in line)


@pytest.mark.parametrize(
    ("expression", "tests"),
    [
        ("quick", ["test_logic"]),
        ("not quick", ["test_drives_chromium", "test_starts_the_app"]),
    ],
)
def test_a_quick_module_keeps_its_slow_tests_out(tmp_path: Path, expression, tests) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_collection_modifyitems  # noqa: F401\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    quick\n    slow\n    browser\n")
    (tmp_path / "test_mixed.py").write_text(MODULE)
    assert selected(tmp_path, expression) == tests
