"""Where things live: the checkout, the shipped weights, the cache and the team's data.

The only module that reads location environment variables:

- ``MIAR_CACHE``: writable cache (assembled models, feature caches, training runs);
  else ``$XDG_CACHE_HOME/miar``, else ``~/.cache/miar``.
- ``MIAR_SHARED``: the team's data (training, evaluation and tests only; never needed to
  score a video); else ``../shared`` beside the checkout.

Functions, not constants, so a test or a caller that sets the variable later is obeyed.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "WEIGHTS_ROOT", "DEFAULT_WEIGHTS", "cache_dir", "shared_dir", "shared_data_dir"]

#: The checkout's root (the folder holding pipeline/, extractors/, model/, weights/).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Shipped weights folders live here, one sub-folder per name.
WEIGHTS_ROOT = REPO_ROOT / "weights"
#: The weights used unless the caller names others.
DEFAULT_WEIGHTS = WEIGHTS_ROOT / "miar-v1"


def cache_dir() -> Path:
    """Writable cache: ``$MIAR_CACHE``, else ``$XDG_CACHE_HOME/miar``, else ``~/.cache/miar``."""
    if os.environ.get("MIAR_CACHE"):
        return Path(os.environ["MIAR_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "miar"


def shared_dir() -> Path:
    """The team's data folder: ``$MIAR_SHARED``, else ``../shared`` beside the checkout."""
    return Path(os.environ.get("MIAR_SHARED") or REPO_ROOT.parent / "shared").expanduser()


def shared_data_dir() -> Path:
    """``shared_dir() / "data"``: the data sets themselves (see shared/README.md)."""
    return shared_dir() / "data"
