"""The code style CI enforces (STYLE.md §9): ruff's pycodestyle, pyflakes and import-order rules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def test_ruff_finds_nothing(repo_root: Path):
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff not installed (it is pinned in requirements-dev.txt)")
    proc = subprocess.run([ruff, "check", "--output-format", "concise", "."], cwd=repo_root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
