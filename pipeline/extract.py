"""Training features from a user's labelled dataset, made exactly as inference makes them.

    python -m pipeline extract --dataset DIR --out FEATURES_DIR [--workers N]

The dataset uses MMSA's layout: ``DIR/label.csv`` with columns
``video_id,clip_id,text,label,mode`` (mode train/valid/test, label in [-3, 3]) and the
media at ``DIR/Raw/<video_id>/<clip_id>.mp4`` (another media ending is accepted when no
.mp4 exists). Each clip is one labelled segment, so it becomes ONE utterance spanning all
the words the recogniser heard in it. The model is trained on what inference feeds it:
the clip goes through the stage sequence that scores videos
(``pipeline.features.featurize``, ``segmentation="whole"``), so the ASR words (not the
label.csv text, which is recorded beside them), voice, face, text encoder, alignment and
model input are inference's own.

Output (``FEATURES_DIR``), in the format ``model.feature_store`` defines: one ``.npz``
per clip under ``<split>/<video_id>/``, written atomically, so a file that exists is
complete and a second run skips it (resumable); ``manifest.json`` with what made the
features, per-split sample lists, and failures with reasons (failed clips are retried
on the next run). Training reads the folder with NumPy only.
"""

from __future__ import annotations

import csv
import logging
import math
import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extractors import face as face_mod
from extractors import voice as voice_mod
from extractors.errors import ExtractionError
from extractors.text import TEXT_EXTRACTOR_VERSION
from model.feature_store import SPLITS, save_clip, write_manifest
from pipeline.config import PipelineConfig
from pipeline.errors import USER_ERRORS, PipelineError
from pipeline.features import featurize
from pipeline.inputs import MEDIA_SUFFIXES
from pipeline.models import Models

__all__ = ["ClipSpec", "ExtractOptions", "ExtractSummary", "EXTRACT_PARTS", "read_label_csv", "extract_dataset"]

log = logging.getLogger(__name__)

LABEL_COLUMNS: tuple[str, ...] = ("video_id", "clip_id", "text", "label", "mode")
#: The model parts extraction needs: inference's, minus MIAR.
EXTRACT_PARTS: tuple[str, ...] = ("asr", "face", "text")


@dataclass(frozen=True)
class ClipSpec:
    """One labelled row of label.csv.

    Attributes:
        video_id: MMSA video id (folder under Raw/).
        clip_id: Clip id (file stem under Raw/<video_id>/).
        text: The dataset's transcript (recorded, not encoded: inference sees ASR words).
        label: Sentiment in [-3, 3].
        split: "train", "valid" or "test".
    """

    video_id: str
    clip_id: str
    text: str
    label: float
    split: str

    @property
    def key(self) -> str:
        return f"{self.video_id}/{self.clip_id}"

    def feature_file(self, out: Path) -> Path:
        return out / self.split / self.video_id / f"{self.clip_id}.npz"


@dataclass(frozen=True)
class ExtractOptions:
    """How a dataset is turned into features.

    Attributes:
        workers: Processes, each loading the models once; 1 runs in this process.
        language: Language the recogniser decodes in (the text encoder reads English);
            given explicitly so a dataset clip is never rejected by language identification.
    """

    workers: int = 1
    language: str = "en"


@dataclass(frozen=True)
class ExtractSummary:
    """What one ``extract_dataset`` run did.

    Attributes:
        extracted: Clips extracted by this run.
        skipped: Clips whose features existed already.
        failures: ``(clip key, reason)`` of clips that failed.
        manifest: The manifest written.
    """

    extracted: int
    skipped: int
    failures: tuple[tuple[str, str], ...]
    manifest: Path


def read_label_csv(dataset: Path) -> list[ClipSpec]:
    """The rows of ``dataset/label.csv``.

    Raises:
        PipelineError: The file is missing, lacks a column, or a row has a bad label or mode.
    """
    path = dataset / "label.csv"
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in LABEL_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise PipelineError(f"{path}: missing columns {missing} (MMSA layout: {','.join(LABEL_COLUMNS)})")
            rows = list(reader)
    except OSError as e:
        raise PipelineError(f"{path}: cannot read the dataset's label file: {e.strerror or e}") from e
    specs = []
    for n, row in enumerate(rows, 2):
        try:
            label = float(row["label"])
        except ValueError as e:
            raise PipelineError(f"{path}:{n}: label {row['label']!r} is not a number") from e
        if not math.isfinite(label) or not -3.0 <= label <= 3.0:
            raise PipelineError(f"{path}:{n}: label {label} outside [-3, 3]")
        if row["mode"] not in SPLITS:
            raise PipelineError(f"{path}:{n}: mode {row['mode']!r}, expected one of {', '.join(SPLITS)}")
        specs.append(ClipSpec(row["video_id"].strip(), row["clip_id"].strip(), row["text"], label, row["mode"]))
    return specs


def media_path(dataset: Path, spec: ClipSpec) -> Path:
    """``Raw/<video_id>/<clip_id>.mp4``, else the clip under another media ending."""
    folder = dataset / "Raw" / spec.video_id
    mp4 = folder / f"{spec.clip_id}.mp4"
    if mp4.exists():
        return mp4
    others = sorted(p for p in folder.glob(f"{spec.clip_id}.*") if p.suffix.lower() in MEDIA_SUFFIXES)
    return others[0] if others else mp4


def _extract_clip(path: Path, spec: ClipSpec, target: Path, config: PipelineConfig, models: Models,
                  language: str) -> None:
    """Featurize one clip as one utterance over all its recognised words and write its file.

    Raises:
        NoAudioTrackError, MediaError: The file cannot give speech.
        ExtractionError: No word was recognised (nothing to encode).
        OSError: The file cannot be written.
    """
    features = featurize(path, config, models, segmentation="whole", language=language)
    if features.status != "ok":
        raise ExtractionError(f"{path}: no speech recognised, nothing to encode")
    assert models.text_encoder is not None
    widths = {"text": models.text_encoder.dim, "audio": len(voice_mod.COLUMNS), "vision": len(face_mod.COLUMNS)}
    strings = {"video_id": spec.video_id, "clip_id": spec.clip_id, "asr_text": features.utterances[0].text,
               "label_text": spec.text}
    save_clip(target, features.samples[0], widths, label=spec.label, strings=strings)


#: The models, options and language of this process's extraction (set by ``_init_worker``).
_WORKER: tuple[Models, PipelineConfig, str] | None = None


def _init_worker(config: PipelineConfig, language: str) -> None:
    global _WORKER
    _WORKER = (Models.load(config, parts=EXTRACT_PARTS), config, language)


def _extract_one(job: tuple[ClipSpec, Path, Path]) -> tuple[str, str]:
    """Extract and write one clip in a worker; returns (key, "" or the failure reason)."""
    assert _WORKER is not None, "worker not initialised"
    models, config, language = _WORKER
    spec, media, target = job
    try:
        if not media.exists():
            raise PipelineError(f"{media}: media file not found")
        _extract_clip(media, spec, target, config, models, language)
    except (*USER_ERRORS, OSError, ValueError, RuntimeError) as e:  # the clip fails, the run goes on
        return spec.key, str(e).splitlines()[0] if str(e) else type(e).__name__
    return spec.key, ""


def _run_jobs(jobs: list[tuple[ClipSpec, Path, Path]], config: PipelineConfig, options: ExtractOptions,
              models: Models | None) -> Iterator[tuple[str, str]]:
    if not jobs:
        return
    if options.workers <= 1:
        global _WORKER
        saved = _WORKER
        own = models is None
        _WORKER = (Models.load(config, parts=EXTRACT_PARTS) if models is None else models, config, options.language)
        try:
            for job in jobs:
                yield _extract_one(job)
        finally:
            if own:
                _WORKER[0].close()
            _WORKER = saved
        return
    # spawn: the workers start clean (no forked native-library threads), each loads the models once
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(options.workers, mp_context=context, initializer=_init_worker,
                             initargs=(config, options.language)) as pool:
        yield from pool.map(_extract_one, jobs)


def extract_dataset(dataset: Path, out: Path, config: PipelineConfig | None = None,
                    options: ExtractOptions = ExtractOptions(), models: Models | None = None) -> ExtractSummary:
    """Extract every clip of an MMSA-layout dataset not extracted yet, then write the manifest.

    Args:
        dataset: Folder with label.csv and Raw/.
        out: Features folder (created; existing clip files are kept and skipped).
        config: Pipeline options (default ``PipelineConfig()``): the same as inference's.
        options: Workers and decoding language.
        models: Models already loaded for ``config`` (at least ``EXTRACT_PARTS``), used
            with one worker; None loads them (each worker process loads its own anyway).

    Returns:
        Counts and failures of this run.

    Raises:
        PipelineError: label.csv is missing or malformed, the same clip is listed twice,
            or the manifest cannot be written.
    """
    config = config or PipelineConfig()
    specs = read_label_csv(dataset)
    keys = [s.key for s in specs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise PipelineError(f"{dataset / 'label.csv'}: clips listed twice: {duplicates[:5]}")
    out.mkdir(parents=True, exist_ok=True)
    todo = [(s, media_path(dataset, s), s.feature_file(out)) for s in specs if not s.feature_file(out).exists()]
    skipped = len(specs) - len(todo)
    log.info("%d clips in %s: %d to extract, %d already done", len(specs), dataset, len(todo), skipped)
    failures: list[tuple[str, str]] = []
    for n, (key, error) in enumerate(_run_jobs(todo, config, options, models), 1):
        if error:
            failures.append((key, error))
            log.error("%s failed: %s", key, error)
        else:
            log.info("%d/%d %s", n, len(todo), key)
    manifest = _write_manifest(dataset, out, specs, failures, config)
    return ExtractSummary(len(todo) - len(failures), skipped, tuple(failures), manifest)


def _write_manifest(dataset: Path, out: Path, specs: Sequence[ClipSpec], failures: Sequence[tuple[str, str]],
                    config: PipelineConfig) -> Path:
    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for spec in specs:
        target = spec.feature_file(out)
        if target.exists():
            by_split[spec.split].append({"video_id": spec.video_id, "clip_id": spec.clip_id, "label": spec.label,
                                         "file": str(target.relative_to(out))})
    split_of = {s.key: s.split for s in specs}
    manifest = {
        "dataset": str(dataset),
        "text_encoder": config.text.encoder,
        "text_extractor_version": TEXT_EXTRACTOR_VERSION,
        "max_tokens": config.text.max_tokens,
        "asr_model": config.asr.model,
        "frame_fps": config.media.frame_fps,
        "audio_columns": list(voice_mod.COLUMNS),
        "vision_columns": list(face_mod.COLUMNS),
        "text_source": "ASR words (what inference sees); label.csv text stored as label_text",
        "counts": {s: len(v) for s, v in by_split.items()},
        "samples": by_split,
        "failures": [{"clip": k, "split": split_of.get(k, ""), "reason": r} for k, r in failures],
    }
    try:
        return write_manifest(out, manifest)
    except OSError as e:
        raise PipelineError(f"{out}: cannot write the features manifest: {e.strerror or e}") from e
