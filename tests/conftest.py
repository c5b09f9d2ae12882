"""Shared fixtures: paths, media made once per run with ffmpeg, markers.

Real clips come from ``MIAR_SHARED`` (default ../shared); tests that need them skip with
a reason when it is absent. Nothing here downloads anything.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MIAR_SHARED") or REPO_ROOT.parent / "shared")
EXAMPLE_CLIP = REPO_ROOT / "examples" / "example.mp4"

requires_shared = pytest.mark.skipif(
    not (SHARED / "data").is_dir(), reason=f"team data not found at {SHARED} (set MIAR_SHARED)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: end-to-end runs that load every model")
    config.addinivalue_line("markers", "requires_shared: needs the team data in MIAR_SHARED")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def ffmpeg() -> Path:
    from extractors.assets import resolve_ffmpeg

    return resolve_ffmpeg()


@pytest.fixture(scope="session")
def make_media(ffmpeg: Path, tmp_path_factory: pytest.TempPathFactory):
    """Run ffmpeg with the given arguments into a session temp file; returns its path."""
    folder = tmp_path_factory.mktemp("media")

    def make(name: str, *args: str) -> Path:
        out = folder / name
        if not out.exists():
            subprocess.run([str(ffmpeg), "-v", "error", "-y", *args, str(out)], check=True)
        return out

    return make


@pytest.fixture(scope="session")
def example_clip() -> Path:
    assert EXAMPLE_CLIP.is_file(), "examples/example.mp4 is part of the repository"
    return EXAMPLE_CLIP
