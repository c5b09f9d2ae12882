"""Where things live: the checkout, the shipped weights, the cache and the team's data.

The only module that reads location environment variables:

- ``MIAR_CACHE``: writable cache (assembled models, feature caches, training runs);
  else ``$XDG_CACHE_HOME/miar``, else ``~/.cache/miar``.
- ``MIAR_SHARED``: the team's data (training, evaluation and tests only; never needed to
  score a video); else ``../shared`` beside the checkout.

Functions, not constants, so a test or a caller that sets the variable later is obeyed.

It also decides which names taken from data (a dataset's ids) may become a path
component (``check_name``) and whether a path stays inside its root (``lies_inside``):
a name from a file must never lead a read or a write anywhere else.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from storage.files import temp_name_bytes

__all__ = ["REPO_ROOT", "WEIGHTS_ROOT", "DEFAULT_WEIGHTS", "TRAINING_CONFIGS", "DEFAULT_TRAINING_CONFIG",
           "CACHE_ENV", "NAME_MAX_BYTES", "UnsafeNameError",
           "cache_dir", "check_folder_path", "check_name", "lies_inside", "shared_dir", "shared_data_dir"]

#: The checkout's root (the folder holding pipeline/, extractors/, model/, weights/).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Shipped weights folders live here, one sub-folder per name.
WEIGHTS_ROOT = REPO_ROOT / "weights"
#: The weights used unless the caller names others.
DEFAULT_WEIGHTS = WEIGHTS_ROOT / "miar-v7"
#: The training configs shipped with the code.
TRAINING_CONFIGS = REPO_ROOT / "training" / "configs"
#: The config that made ``DEFAULT_WEIGHTS`` (curated sources); training and its data sources default to it.
DEFAULT_TRAINING_CONFIG = TRAINING_CONFIGS / "miar-v7.json"
#: The variable naming the cache folder.
CACHE_ENV = "MIAR_CACHE"
#: The longest file name (one path component) Linux file systems take, in bytes (NAME_MAX).
NAME_MAX_BYTES = 255


def cache_dir() -> Path:
    """Writable cache: ``$MIAR_CACHE``, else ``$XDG_CACHE_HOME/miar``, else ``~/.cache/miar``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "miar"


def check_folder_path(folder: Path) -> None:
    """Raise ``NotADirectoryError`` when ``folder`` cannot be a folder: it, or the nearest existing
    path above it, exists and is not a folder (``MIAR_CACHE`` pointing at a file).

    Says nothing about permissions: creating or writing still reports those.
    """
    for path in (folder, *folder.parents):
        if path.is_dir():
            return
        if os.path.lexists(path):
            hint = f" (${CACHE_ENV} is {os.environ[CACHE_ENV]!r})" if os.environ.get(CACHE_ENV) else ""
            raise NotADirectoryError(f"{path} is a file, not a folder, so {folder} cannot be created{hint}")


class UnsafeNameError(ValueError):
    """A name taken from data cannot safely be one path component."""


def check_name(name: str, suffixes: Sequence[str] = ("",)) -> str:
    """``name`` when it is safe as one plain path component, written with each of ``suffixes``.

    Refused: empty; starting with "." (``.``, ``..``, hidden files and the writer's own temporary
    names); a separator ("/" or "\\"); NUL or any other control or line-separator character;
    longer than ``NAME_MAX_BYTES`` in UTF-8 once a suffix is added, or once
    ``storage.files.atomic_path`` makes its temporary name from it. Such a name can never be
    absolute, climb out of its folder, or hide a newline in a log line.

    Args:
        name: The name, e.g. a ``video_id`` read from a CSV.
        suffixes: Endings of the files the name will be used for (".npz", ".mp4"), each checked
            with the writer's temporary name too; "" for a folder (the name alone).

    Returns:
        ``name`` itself.

    Raises:
        UnsafeNameError: Why the name cannot be used (one line, without the name itself).
    """
    if not name:
        raise UnsafeNameError("is empty")
    if name.startswith("."):
        raise UnsafeNameError("starts with '.' (reserved for '..', hidden and temporary files)")
    if "/" in name or "\\" in name:
        raise UnsafeNameError("contains a path separator ('/' or '\\')")
    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")), None)
    if bad is not None:
        raise UnsafeNameError(f"contains U+{ord(bad):04X}, a control or line-separator character")
    for suffix in suffixes:
        final = name + suffix
        longest = max(len(os.fsencode(final)), temp_name_bytes(final) if suffix else 0)
        if longest > NAME_MAX_BYTES:
            given = f": with {suffix!r} and the temporary name written first," if suffix else ","
            raise UnsafeNameError(f"is {len(os.fsencode(name))} bytes in UTF-8{given} over the file system's "
                                  f"limit of {NAME_MAX_BYTES} bytes for a name")
    return name


def lies_inside(path: Path, root: Path) -> bool:
    """True when ``path``, with symbolic links and ``..`` resolved, is ``root`` or lies inside it.

    ``root`` is resolved too; a path that cannot be resolved (a link loop) counts as outside.
    """
    try:
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


def shared_dir() -> Path:
    """The team's data folder: ``$MIAR_SHARED``, else ``../shared`` beside the checkout."""
    return Path(os.environ.get("MIAR_SHARED") or REPO_ROOT.parent / "shared").expanduser()


def shared_data_dir() -> Path:
    """``shared_dir() / "data"``: the data sets themselves (see shared/README.md)."""
    return shared_dir() / "data"
