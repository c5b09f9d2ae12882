"""Writing files so that a name only ever holds complete content, and file digests.

One implementation serves every writer of the project (CSV/JSONL/HTML/PNG results, the
batch summary, feature files, manifests, checkpoints, caches, assembled models):

- the content goes to a temporary file beside the target (same file system, so the final
  ``os.replace`` is atomic), is flushed and fsync'ed, gets the permissions any new file
  would get under the process's umask (``mkstemp`` alone would leave 0600), and only then
  is renamed over the target. A crash or Ctrl-C leaves the old file (or nothing) and no
  temporary file behind;
- only a regular file (or nothing) is ever replaced: a symlink, a device node, a FIFO or
  a folder at the target is refused (``NotRegularFileError``), because renaming over it
  would silently swap a system path (``/dev/stdout``) for a file.

Errors are ``OSError``s; callers turn them into their own one-line errors.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["NotRegularFileError", "atomic_path", "open_atomic", "write_bytes_atomic", "write_text_atomic",
           "write_via_atomic", "sha256_of", "TEMP_SUFFIX", "temp_prefix", "temp_name_bytes", "temp_files_of",
           "outputs_over_inputs", "not_a_folder"]

#: Temporary files end with this (then the target's own suffix, which ``np.savez`` needs).
TEMP_SUFFIX = ".part"
#: Bytes of the target's name kept in its temporary name, which must stay within the file
#: system's 255-byte limit for a name: "." + these + "." + 8 random characters + suffixes.
TEMP_NAME_KEEP_BYTES = 200
#: Random characters ``tempfile.mkstemp`` puts in a name.
_MKSTEMP_RANDOM_CHARS = 8

#: The process's umask, read once at import (reading it means setting it, which is not thread-safe).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class NotRegularFileError(OSError):
    """The target exists and is not a regular file: it is never replaced."""


def temp_prefix(name: str) -> str:
    """The start of the temporary name of a file called ``name``: ``.`` + up to 200 bytes of it + ``.``.

    Cut by bytes at a character boundary, so a long multibyte name still gets a temporary
    name within 255 bytes whenever its own name fits.
    """
    kept = os.fsencode(name)[:TEMP_NAME_KEEP_BYTES].decode("utf-8", errors="ignore")
    return f".{kept}."


def temp_name_bytes(name: str) -> int:
    """Length in bytes of the temporary name ``atomic_path`` gives a file called ``name``."""
    return (len(os.fsencode(temp_prefix(name))) + _MKSTEMP_RANDOM_CHARS
            + len(os.fsencode(TEMP_SUFFIX + Path(name).suffix)))


def temp_files_of(path: Path) -> list[Path]:
    """Temporary files ``atomic_path`` left for ``path`` (a writer killed mid-write cannot remove its own)."""
    path = Path(path)
    pattern = f"{glob.escape(temp_prefix(path.name))}*{TEMP_SUFFIX}{path.suffix}"
    return sorted(path.parent.glob(pattern))


def _check_target(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
                else "a device or pipe")
        raise NotRegularFileError(f"{path} is {kind}, not a regular file; refusing to replace it")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write by name; rename it into place on success.

    For libraries that write to a file name (``np.savez``, ``torch.save``, ffmpeg). The
    temporary name ends with ``path``'s own suffix, so ``np.savez`` appends nothing.

    Raises:
        NotRegularFileError: ``path`` exists and is not a regular file.
        OSError: The folder cannot be created or written.
    """
    path = Path(path)
    _check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name),
                                      suffix=TEMP_SUFFIX + path.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            os.fsync(f.fileno())
        _check_target(path)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def open_atomic(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for streaming writes; rename it into place on success.

    For output written piece by piece (rows as they are scored): memory stays flat and
    the final name still only ever holds a complete file.

    Args:
        path: The target.
        mode: "w" (text) or "wb" (binary).
        encoding: Text encoding (ignored in binary mode).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"open_atomic: mode {mode!r}, expected 'w' or 'wb'")
    with atomic_path(path) as tmp:
        if mode == "wb":
            with open(tmp, "wb") as f:
                yield f
        else:
            with open(tmp, "w", encoding=encoding, newline="") as f:
                yield f


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see the module docstring)."""
    with open_atomic(path, "wb") as f:
        f.write(data)


def write_text_atomic(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (newlines as given)."""
    with open_atomic(path, "w", encoding=encoding) as f:
        f.write(text)


def write_via_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Create ``path`` through ``write(temporary_path)`` (e.g. ``np.savez``, ``torch.save``), atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (verifies shipped weights and assembled models)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _identities(path: Path) -> tuple[str, tuple[int, int] | None]:
    """What names one file: the path with links resolved, and (device, inode) when it exists (hard links)."""
    try:
        st = os.stat(path)
        inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
    except OSError:
        inode = None
    return os.path.realpath(path), inode


def outputs_over_inputs(inputs: Iterable[Path], outputs: Iterable[Path]) -> list[tuple[Path, Path]]:
    """``(output, input)`` for each output that would replace an input: the same file once links are
    resolved, or the same inode (a hard link). Compared by path and ``stat`` only: nothing is opened.

    Every command checks its outputs against its inputs with this before anything loads, so a run
    never writes its results over what it reads (``run clips/a.csv --out clips``, ``text f --out f``).
    """
    by_path: dict[str, Path] = {}
    by_inode: dict[tuple[int, int], Path] = {}
    for path in inputs:
        real, inode = _identities(path)
        by_path.setdefault(real, path)
        if inode is not None:
            by_inode.setdefault(inode, path)
    clashes = []
    for out in outputs:
        real, inode = _identities(out)
        hit = by_path.get(real) or (by_inode.get(inode) if inode is not None else None)
        if hit is not None:
            clashes.append((Path(out), hit))
    return clashes


def not_a_folder(folder: Path) -> Path | None:
    """The first of ``folder`` and its parents that exists and is not a folder (so ``folder`` cannot be
    created or written into), else None."""
    for path in (Path(folder), *Path(folder).parents):
        if os.path.lexists(path):
            return None if os.path.isdir(path) else path
    return None
