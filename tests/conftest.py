"""Shared fixtures: paths, the models loaded once per run, media made once per run with ffmpeg, markers.

The one place tests learn where the team's data is: ``SHARED`` (``storage.locations.shared_dir()``:
``$MIAR_SHARED``, else ``../shared``) and the ``requires_shared`` mark, which skips with a reason
when it is absent. Import them from here (``from tests.conftest import SHARED, requires_shared``).

Markers (registered in pyproject.toml): ``slow`` on every test that loads a model or decodes media,
so ``pytest -m "not slow"`` is a lane of seconds; ``requires_shared`` as above; ``requires_train`` on
tests of requirements-train.txt's packages, skipped with that reason where they are not installed
(CI). ``no_model_loads`` fails a test that loads a model. Nothing here downloads anything.
"""

from __future__ import annotations

import importlib.util
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


#: Packages of requirements-train.txt that ``requires_train`` tests import (CI installs requirements.txt,
#: -dev and -ray only, so there they skip, saying why).
TRAIN_PACKAGES: tuple[str, ...] = ("vaderSentiment",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [name for name in TRAIN_PACKAGES if importlib.util.find_spec(name) is None]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"needs requirements-train.txt ({', '.join(missing)} not installed; CI does not "
                                   "install it): pip install -r requirements-train.txt")
    for item in items:
        if "requires_train" in item.keywords:
            item.add_marker(skip)


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


@pytest.fixture
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything loads models (``Models.load``): "loads no model" is checked by what is
    called, never by how long it took (a timing fails under load and proves nothing; timings live in bench/)."""
    from pipeline.models import Models

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("models were loaded")

    monkeypatch.setattr(Models, "load", refuse)


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
