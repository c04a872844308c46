"""Storage rules: every binary file the repository tracks goes to large-file storage.

The Hub refuses a push holding binary files outside its large-file storage, so a new binary
type (a new image format, a shipped ONNX graph) must come with a rule in ``.gitattributes``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.app_server import REPO

LFS = {"filter": "lfs", "diff": "lfs", "merge": "lfs", "text": "unset"}
SNIFF_BYTES = 8000  # git's own binary test reads this much and looks for a NUL byte

if shutil.which("git") is None or not (REPO / ".git").exists():
    pytest.skip("not a git checkout", allow_module_level=True)


def git(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, input=stdin, capture_output=True, text=True, check=True
    ).stdout


def is_binary(path: Path) -> bool:
    """As git decides it: a NUL byte near the start."""
    with path.open("rb") as handle:
        return b"\0" in handle.read(SNIFF_BYTES)


def attributes(paths: list[str]) -> dict[str, dict[str, str]]:
    """path -> {attribute: value} for the four attributes a large-file rule sets."""
    found: dict[str, dict[str, str]] = {path: {} for path in paths}
    out = git("check-attr", "--stdin", *LFS, stdin="\n".join(paths) + "\n")
    for line in out.splitlines():
        path, name, value = line.rsplit(": ", 2)
        found[path][name] = value
    return found


def tracked() -> list[str]:
    return [p for p in git("ls-files", "-z").split("\0") if p and (REPO / p).is_file()]


def outside_lfs(paths: list[str]) -> list[str]:
    return [path for path, attrs in attributes(paths).items() if attrs != LFS]


def test_every_tracked_binary_file_goes_to_large_file_storage() -> None:
    binaries = [path for path in tracked() if is_binary(REPO / path)]
    # Not vacuous: the shipped features and images are binary and tracked.
    assert len(binaries) > 600
    assert any(p.endswith(".safetensors") for p in binaries)
    assert outside_lfs(binaries) == []


def test_text_files_stay_plain_text() -> None:
    """A catch-all rule would pass the test above; source and data text must stay diffable."""
    texts = [path for path in tracked() if not is_binary(REPO / path)]
    assert any(p.endswith(".py") for p in texts) and "precomputed/manifest.json" in texts
    assert [path for path, attrs in attributes(texts).items() if attrs == LFS] == []


def test_every_type_the_project_produces_has_a_rule() -> None:
    """Files the commands write (ONNX graphs, FAISS indexes, parquet previews, Keras weights,
    own-image zips) are routed too, before anyone commits one; an unknown type is not."""
    produced = ["a.onnx", "b/c.faiss", "d.parquet", "e.weights.h5", "f.keras", "g.zip", "h.npy"]
    assert outside_lfs(produced) == []
    assert outside_lfs(["new.unknownbinary"]) == ["new.unknownbinary"]
