"""Training features from a user's labelled dataset, made exactly as inference makes them.

    python -m pipeline extract --dataset DIR --out FEATURES_DIR [--workers N]

The dataset uses MMSA's layout: ``DIR/label.csv`` with columns
``video_id,clip_id,text,label,mode`` (mode train/valid/test, label in [-3, 3]) and the
media at ``DIR/Raw/<video_id>/<clip_id>.mp4`` (another media ending is accepted when no
.mp4 exists). Each clip is one labelled segment, so it becomes ONE utterance spanning all
the words the recogniser heard in it. The model is trained on what inference feeds it:
the ASR words (not the label.csv text, which is recorded beside them), the same voice,
face, text encoder, word alignment and ``pipeline.run.to_sample_input``.

Output (``FEATURES_DIR``):

- ``<split>/<video_id>/<clip_id>.npz`` per clip: ``text`` (Lt, Dt) float32, ``text_mask``
  (Lt,) bool, ``audio`` (Lt, 34) / ``vision`` (Lt, 56) float32 with their masks (0 rows
  when the modality is missing in the clip), ``label`` float32 scalar, ``video_id``,
  ``clip_id``, ``asr_text``, ``label_text`` strings. Written atomically, so a file that
  exists is complete: a second run skips it (resumable).
- ``manifest.json``: extractor versions, text encoder, ASR model, audio/vision columns,
  per-split counts and sample lists, and failures with reasons (failed clips are retried
  on the next run).

``model.train --features FEATURES_DIR`` reads these with NumPy only.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import multiprocessing
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from extractors import face as face_mod
from extractors import voice as voice_mod
from extractors.assets import resolve_ffmpeg
from extractors.errors import ExtractionError, NoAudioTrackError
from extractors.face import FaceExtractor
from extractors.media import decode_audio, iter_frames, probe
from extractors.text import TEXT_EXTRACTOR_VERSION, TextEncoder
from extractors.transcript import SAMPLE_RATE_HZ, Transcriber
from extractors.voice import extract_voice
from model.data import save_npz_atomic
from pipeline.align import align_utterance
from pipeline.api import MEDIA_SUFFIXES
from pipeline.config import PipelineConfig
from pipeline.errors import USER_ERRORS, PipelineError
from pipeline.records import Utterance
from pipeline.run import empty_track, encodable_words, native_stderr_quiet, to_sample_input

__all__ = ["FEATURES_FORMAT", "MANIFEST_FILE", "SPLITS", "ClipSpec", "ExtractOptions", "ExtractSummary",
           "read_label_csv", "extract_dataset"]

log = logging.getLogger(__name__)

#: Version of the features folder layout (``model.train`` checks it).
FEATURES_FORMAT = "miar-features-v1"
MANIFEST_FILE = "manifest.json"
#: MMSA's split names, in the order they are listed.
SPLITS: tuple[str, ...] = ("train", "valid", "test")
LABEL_COLUMNS: tuple[str, ...] = ("video_id", "clip_id", "text", "label", "mode")


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


@dataclass
class _Extractors:
    """The models extraction needs (inference's, minus MIAR), loaded once per process."""

    ffmpeg: Path
    transcriber: Transcriber
    text_encoder: TextEncoder
    face: FaceExtractor

    @classmethod
    def load(cls, config: PipelineConfig) -> _Extractors:
        if config.torch_threads > 0:
            import torch

            torch.set_num_threads(config.torch_threads)
        with native_stderr_quiet():
            face = FaceExtractor(config.face)
        return cls(resolve_ffmpeg(), Transcriber(config.asr, config.cache_dir), TextEncoder(config.text), face)


def _clip_arrays(path: Path, config: PipelineConfig, models: _Extractors, language: str) -> dict[str, np.ndarray]:
    """Features of one clip as one utterance over all its recognised words.

    Raises:
        NoAudioTrackError, MediaError: The file cannot give speech.
        ExtractionError: No word was recognised (nothing to encode).
    """
    media = probe(path, models.ffmpeg)
    if not media.has_audio:
        raise NoAudioTrackError(f"{path}: no audio track")
    audio = decode_audio(path, models.ffmpeg, config.media.sample_rate_hz)
    transcript = models.transcriber.transcribe(audio, None, language)
    words = transcript.words
    utterance = Utterance(0, words[0].start_s, words[-1].end_s, words) if words else None
    encodable = encodable_words(utterance) if utterance is not None else ([], np.zeros((0, 2)))
    if not encodable[0]:
        raise ExtractionError(f"{path}: no speech recognised, nothing to encode")
    voice = extract_voice(audio, SAMPLE_RATE_HZ, config.voice)
    if media.has_video:
        frames = iter_frames(media, models.ffmpeg, config.media.frame_fps, config.media.max_side_px)
        face = models.face.extract(frames, None, rate_hz=config.media.frame_fps)
    else:
        face = empty_track("face", face_mod.COLUMNS, config.media.frame_fps)
    tokens = models.text_encoder.encode_batch([encodable[0]])[0]
    aligned = align_utterance(utterance, encodable[0], encodable[1], tokens, voice, face, config.align)
    sample = to_sample_input(aligned)
    arrays: dict[str, np.ndarray] = {"text": sample.text.astype(np.float32), "text_mask": sample.text_mask}
    for name, width in (("audio", len(voice_mod.COLUMNS)), ("vision", len(face_mod.COLUMNS))):
        values, mask = sample.modality(name)
        arrays[name] = np.zeros((0, width), np.float32) if values is None else values.astype(np.float32)
        arrays[f"{name}_mask"] = np.zeros(0, bool) if mask is None else mask.astype(bool)
    arrays["asr_text"] = np.array(utterance.text)
    return arrays


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically, so an existing file is always a complete one (resumability relies on it)."""
    save_npz_atomic(path, arrays)


_WORKER: tuple[_Extractors, PipelineConfig, str] | None = None


def _init_worker(config: PipelineConfig, language: str) -> None:
    global _WORKER
    _WORKER = (_Extractors.load(config), config, language)


def _extract_one(job: tuple[ClipSpec, Path, Path]) -> tuple[str, str]:
    """Extract and write one clip in a worker; returns (key, "" or the failure reason)."""
    assert _WORKER is not None, "worker not initialised"
    models, config, language = _WORKER
    spec, media, target = job
    try:
        if not media.exists():
            raise PipelineError(f"{media}: media file not found")
        arrays = _clip_arrays(media, config, models, language)
        arrays.update(label=np.float32(spec.label), video_id=np.array(spec.video_id),
                      clip_id=np.array(spec.clip_id), label_text=np.array(spec.text))
        _save_npz(target, arrays)
    except (*USER_ERRORS, OSError, ValueError, RuntimeError) as e:  # the clip fails, the run goes on
        return spec.key, str(e).splitlines()[0] if str(e) else type(e).__name__
    return spec.key, ""


def _run_jobs(jobs: list[tuple[ClipSpec, Path, Path]], config: PipelineConfig,
              options: ExtractOptions) -> Iterator[tuple[str, str]]:
    if options.workers <= 1:
        global _WORKER
        saved = _WORKER
        _init_worker(config, options.language)
        try:
            for job in jobs:
                yield _extract_one(job)
        finally:
            assert _WORKER is not None
            _WORKER[0].face.close()
            _WORKER = saved
        return
    # spawn: the workers start clean (no forked native-library threads), each loads the models once
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(options.workers, mp_context=context, initializer=_init_worker,
                             initargs=(config, options.language)) as pool:
        yield from pool.map(_extract_one, jobs)


def extract_dataset(dataset: Path, out: Path, config: PipelineConfig | None = None,
                    options: ExtractOptions = ExtractOptions()) -> ExtractSummary:
    """Extract every clip of an MMSA-layout dataset not extracted yet, then write the manifest.

    Args:
        dataset: Folder with label.csv and Raw/.
        out: Features folder (created; existing clip files are kept and skipped).
        config: Pipeline options (default ``PipelineConfig()``): the same as inference's.
        options: Workers and decoding language.

    Returns:
        Counts and failures of this run.

    Raises:
        PipelineError: label.csv is missing or malformed, or the same clip is listed twice.
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
    for n, (key, error) in enumerate(_run_jobs(todo, config, options), 1):
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
        "format": FEATURES_FORMAT,
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
    path = out / MANIFEST_FILE
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".manifest.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return path
