"""Shared fixtures: paths, the models loaded once per run, media made once per run with ffmpeg, markers.

The one place tests learn where the team's data is: ``SHARED`` (``storage.locations.shared_dir()``:
``$MIAR_SHARED``, else ``../shared``) and the ``requires_shared`` mark, which skips with a reason
when it is absent. Import them from here (``from tests.conftest import SHARED, requires_shared``).

Markers: ``slow`` on every test that loads a model or decodes media, so ``pytest -m "not slow"``
is a lane of seconds; ``requires_shared`` as above. Nothing here downloads anything.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from storage.locations import REPO_ROOT, shared_data_dir, shared_dir

if TYPE_CHECKING:
    from pipeline.models import Models

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

__all__ = ["REPO_ROOT", "SHARED", "SHARED_DATA", "EXAMPLE_CLIP", "requires_shared"]

#: The team's data folder (read once per run; tests that need it carry ``requires_shared``).
SHARED = shared_dir()
#: ``SHARED / "data"``: the data sets themselves.
SHARED_DATA = shared_data_dir()
EXAMPLE_CLIP = REPO_ROOT / "examples" / "example.mp4"

requires_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"team data not found at {SHARED} (set MIAR_SHARED)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: loads a model or decodes media (deselect with -m 'not slow')")
    config.addinivalue_line("markers", "requires_shared: needs the team data in MIAR_SHARED (skips without it)")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def loaded_models() -> Iterator[Models]:
    """Every model of the default ``PipelineConfig()``, loaded once per test run and closed at its end.

    Tests that only read the models share these instead of paying a load each (a few seconds).
    A test that needs other settings loads its own ``Models``.
    """
    from pipeline.config import PipelineConfig
    from pipeline.models import Models

    with Models.load(PipelineConfig()) as models:
        yield models


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
