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

label.csv is data, not trusted: it is read as UTF-8 (a byte-order mark is fine), row by
row, and every ``video_id`` and ``clip_id`` must be a plain file name
(``storage.locations.check_name``: not empty, no separator, no leading ".", no control
character, short enough with ".npz" and the writer's temporary name). Before anything is
extracted, ``Raw/<video_id>`` must lie inside ``Raw`` and ``<split>/<video_id>`` inside
FEATURES_DIR with links resolved. Any bad row refuses the whole run with one line naming
``label.csv:LINE``, so nothing is read or written anywhere else. A clip's media file may
itself be a symbolic link (datasets are often assembled that way) but must lead to a regular
file. A clip file counts as done only when it opens as an ``.npz`` holding every key
``save_clip`` writes for this clip; anything else there is extracted again.
"""

from __future__ import annotations

import glob
import logging
import math
import multiprocessing
import multiprocessing.util
import os
import stat
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from extractors import face as face_mod
from extractors.errors import ExtractionError
from extractors.text import TEXT_EXTRACTOR_VERSION, TextEncoder, TextOptions, normalise_text
from extractors.voice_states import audio_columns, states_source
from model.feature_store import (
    LABEL_FILE,
    MANIFEST_FILE,
    SPLITS,
    LabelFileError,
    read_label_rows,
    read_manifest,
    save_clip,
    write_manifest,
)
from model.schema import MODALITIES
from pipeline.config import PipelineConfig
from pipeline.errors import USER_ERRORS, PipelineError
from pipeline.features import featurize
from pipeline.inputs import MEDIA_SUFFIXES
from pipeline.languages import ENGLISH
from pipeline.models import Models
from storage.files import not_a_folder, outputs_over_inputs, write_via_atomic
from storage.locations import UnsafeNameError, check_name, lies_inside

__all__ = ["ClipSpec", "ExtractOptions", "ExtractSummary", "EXTRACT_PARTS", "FEATURE_KEYS", "LABEL_COLUMNS",
           "REENCODE_TOLERANCE", "extract_dataset", "is_complete_clip", "read_label_csv", "reencode_text"]

log = logging.getLogger(__name__)

LABEL_COLUMNS: tuple[str, ...] = ("video_id", "clip_id", "text", "label", "mode")
#: What a complete clip file holds: the arrays and strings ``model.feature_store.save_clip`` writes.
FEATURE_KEYS: frozenset[str] = frozenset(
    {*MODALITIES, *(f"{m}_mask" for m in MODALITIES), "label", "video_id", "clip_id", "asr_text", "label_text"}
)
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
        line: The row's line in label.csv (where it ends), for messages; 0 when not from a file.
    """

    video_id: str
    clip_id: str
    text: str
    label: float
    split: str
    line: int = 0

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
    language: str = ENGLISH


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
    """The rows of ``dataset/label.csv``, checked (see the module docstring), read row by row.

    Raises:
        PipelineError: One line naming ``label.csv:LINE``: the file is missing, not UTF-8 or not
            CSV; a column is missing; a row has too few or too many fields, a field over
            ``csv.field_size_limit()`` characters, an id that cannot be a file name, a bad label
            or mode; or a clip is listed twice.
    """
    path = dataset / LABEL_FILE
    try:
        return _parse_label_rows(read_label_rows(path, LABEL_COLUMNS), path)
    except LabelFileError as e:
        raise PipelineError(str(e)) from e
    except OSError as e:
        raise PipelineError(f"{path}: cannot read the dataset's label file: {e.strerror or e}") from e


def _parse_label_rows(rows: Iterator[tuple[int, dict[str, str]]], path: Path) -> list[ClipSpec]:
    """ClipSpecs of label.csv's rows (``model.feature_store.read_label_rows``), duplicates refused."""
    specs: list[ClipSpec] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        spec = _clip_spec(row, path, line)
        seen = first_line.setdefault(spec.key, line)
        if seen != line:
            raise PipelineError(f"{path}:{line}: clip {_shown(spec.key)} is listed twice (first at line {seen})")
        specs.append(spec)
    return specs


def _clip_spec(row: dict[str, str], path: Path, line: int) -> ClipSpec:
    """One row's ClipSpec, its ids checked as file names, its label and mode as values."""
    video_id, clip_id = row["video_id"].strip(), row["clip_id"].strip()
    for column, value, suffixes in (("video_id", video_id, ("",)), ("clip_id", clip_id, (".npz", ".mp4"))):
        try:
            check_name(value, suffixes)
        except UnsafeNameError as e:
            raise PipelineError(f"{path}:{line}: {column} {_shown(value)} {e}; ids become file and folder "
                                "names under Raw/ and the features folder") from e
    try:
        label = float(row["label"])
    except ValueError as e:
        raise PipelineError(f"{path}:{line}: label {_shown(row['label'])} is not a number") from e
    if not math.isfinite(label) or not -3.0 <= label <= 3.0:
        raise PipelineError(f"{path}:{line}: label {label} outside [-3, 3]")
    mode = row["mode"].strip()
    if mode not in SPLITS:
        raise PipelineError(f"{path}:{line}: mode {_shown(mode)}, expected one of {', '.join(SPLITS)}")
    return ClipSpec(video_id, clip_id, row["text"], label, mode, line)


def _shown(value: str, limit: int = 60) -> str:
    """``value`` quoted for a one-line message: control characters escaped, long values cut."""
    return repr(value[:limit]) + (f"... ({len(value):,} characters)" if len(value) > limit else "")


def media_path(dataset: Path, spec: ClipSpec) -> Path:
    """``Raw/<video_id>/<clip_id>.mp4``, else the clip under another media ending."""
    folder = dataset / "Raw" / spec.video_id
    mp4 = folder / f"{spec.clip_id}.mp4"
    if mp4.exists():
        return mp4
    pattern = f"{glob.escape(spec.clip_id)}.*"  # an id is a name, never a pattern ("[a]", "*")
    others = sorted(p for p in folder.glob(pattern) if p.suffix.lower() in MEDIA_SUFFIXES)
    return others[0] if others else mp4


def _check_folders_inside(dataset: Path, out: Path, specs: Sequence[ClipSpec]) -> None:
    """Refuse the run when a clip's media folder leaves ``Raw`` or its feature folder leaves ``out``.

    The ids are plain names already, so only a symbolic link inside the dataset or the
    features folder can lead elsewhere; each folder is resolved once.

    Raises:
        PipelineError: Naming the first such row.
    """
    raw, label_path = dataset / "Raw", dataset / LABEL_FILE
    checked: set[Path] = set()
    for spec in specs:
        for folder, root in ((raw / spec.video_id, raw), (out / spec.split / spec.video_id, out)):
            if folder in checked:
                continue
            if not lies_inside(folder, root):
                raise PipelineError(
                    f"{label_path}:{spec.line}: video_id {_shown(spec.video_id)}: {folder} leads outside {root} "
                    "(a symbolic link?); nothing was extracted"
                )
            checked.add(folder)


def is_complete_clip(target: Path, spec: ClipSpec) -> bool:
    """True when ``target`` is a regular file (not a link) that opens as this clip's ``.npz`` with
    label.csv's current label and text.

    A leftover, truncated or foreign file is not complete, nor is one whose label or text label.csv
    has changed since (training reads the label from the file): a warning says why, resume
    extracts the clip again and the atomic writer replaces it.
    """
    try:
        if not stat.S_ISREG(os.lstat(target).st_mode):
            problem = "not a regular file"
        else:
            with np.load(target) as z:
                missing = sorted(FEATURE_KEYS - set(z.files))
                if missing:
                    problem = f"lacks {missing[:4]}"
                elif (str(z["video_id"]), str(z["clip_id"])) != (spec.video_id, spec.clip_id):
                    problem = f"holds clip {_shown(str(z['video_id']))}/{_shown(str(z['clip_id']))}"
                elif z["label"] != np.float32(spec.label):
                    problem = f"holds label {float(z['label']):g}, label.csv line {spec.line} now says {spec.label:g}"
                elif str(z["label_text"]) != spec.text:
                    problem = f"holds text {_shown(str(z['label_text']))}, label.csv line {spec.line} now says " \
                              f"{_shown(spec.text)}"
                else:
                    return True
    except FileNotFoundError:
        return False
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # not an npz, truncated, pickled
        problem = f"unreadable as .npz: {e}"
    log.warning("%s: %s; extracting %s again", target, problem, spec.key)
    return False


def _other_split_files(out: Path, spec: ClipSpec) -> Iterator[Path]:
    """Where ``spec``'s clip file would be in the features folder's other splits."""
    for split in SPLITS:
        if split != spec.split:
            yield replace(spec, split=split).feature_file(out)


def _check_outputs_spare_inputs(dataset: Path, out: Path, specs: Sequence[ClipSpec]) -> None:
    """Refuse the run when a file it writes or removes is one it reads (label.csv, a clip's media),
    compared by path with links resolved and by inode, before anything is extracted.

    Raises:
        PipelineError: Naming the first such file.
    """
    inputs = [dataset / LABEL_FILE, *(media_path(dataset, spec) for spec in specs)]
    outputs = [out / MANIFEST_FILE]
    for spec in specs:
        outputs += [spec.feature_file(out), *_other_split_files(out, spec)]
    clashes = outputs_over_inputs(inputs, outputs)
    if clashes:
        output, source = clashes[0]
        raise PipelineError(f"{output} would be written over the input {source}; nothing was extracted: "
                            "write the features to another folder")


def _remove_moved_clips(out: Path, specs: Sequence[ClipSpec]) -> None:
    """Remove the file a clip left in another split before label.csv moved it (``train`` -> ``test``).

    Only this clip's own ``.npz`` (a regular file inside ``out`` holding its ids) is removed, with a
    warning; anything else found there is reported and left alone.
    """
    for spec in specs:
        for stale in _other_split_files(out, spec):
            if not os.path.lexists(stale):
                continue
            old_split = stale.parent.parent.name
            if lies_inside(stale.parent, out) and _holds_clip(stale, spec):
                stale.unlink()
                log.warning("%s: label.csv line %d puts clip %s in %s; removed its %s features %s", spec.key,
                            spec.line, spec.key, spec.split, old_split, stale)
            else:
                log.warning("%s: %s is in split %s, but label.csv line %d puts the clip in %s; it is not this "
                            "clip's features file, so it is left alone (not in the manifest)", spec.key, stale,
                            old_split, spec.line, spec.split)


def _holds_clip(path: Path, spec: ClipSpec) -> bool:
    """``path`` is a regular file (not a link) that opens as an ``.npz`` of ``spec``'s ids."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with np.load(path) as z:
            return (str(z["video_id"]), str(z["clip_id"])) == (spec.video_id, spec.clip_id)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return False


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
    widths = {"text": models.text_encoder.dim, "audio": len(audio_columns(models.voice_states is not None)),
              "vision": len(face_mod.COLUMNS)}
    strings = {"video_id": spec.video_id, "clip_id": spec.clip_id, "asr_text": features.utterances[0].text,
               "label_text": spec.text}
    save_clip(target, features.samples[0], widths, label=spec.label, strings=strings)


#: The models, options and language of this process's extraction (set by ``_init_worker``).
_WORKER: tuple[Models, PipelineConfig, str] | None = None
#: Why this worker process could not load its models (set by ``_init_worker``), else None.
_WORKER_SETUP_ERROR: str | None = None


def _one_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _init_worker(config: PipelineConfig, language: str) -> None:
    """Load this worker's models; a set-up error is kept for the parent, not raised (a raising
    initializer breaks the pool with a traceback per worker)."""
    global _WORKER, _WORKER_SETUP_ERROR
    try:
        models = Models.load(config, parts=EXTRACT_PARTS)
    except USER_ERRORS as e:
        _WORKER_SETUP_ERROR = _one_line(e)
        return
    _WORKER = (models, config, language)
    # Released when the pool lets the worker go, while its threads still run: left to garbage
    # collection at exit (or to atexit, which runs after the interpreter's thread pools have shut
    # down), MediaPipe's landmarker cannot close and prints a traceback.
    multiprocessing.util.Finalize(None, models.close, exitpriority=10)


def _extract_one(job: tuple[ClipSpec, Path, Path]) -> tuple[str, str, bool]:
    """Extract and write one clip in a worker.

    Returns:
        (clip key, "" or the failure reason, True when the worker's set-up failed).
    """
    spec, media, target = job
    if _WORKER_SETUP_ERROR is not None:
        return spec.key, _WORKER_SETUP_ERROR, True
    assert _WORKER is not None, "worker not initialised"
    models, config, language = _WORKER
    try:
        if not media.exists():
            raise PipelineError(f"{media}: media file not found")
        if not media.is_file():
            raise PipelineError(f"{media}: not a regular file (a folder, device or pipe)")
        _extract_clip(media, spec, target, config, models, language)
    except (*USER_ERRORS, OSError, ValueError, RuntimeError) as e:  # the clip fails, the run goes on
        return spec.key, _one_line(e), False
    return spec.key, "", False


def _run_jobs(jobs: list[tuple[ClipSpec, Path, Path]], config: PipelineConfig, options: ExtractOptions,
              models: Models | None) -> Iterator[tuple[str, str]]:
    """(clip key, "" or the failure reason) of each job, in order.

    Raises:
        ExtractionError, CheckpointError, PipelineError: The models cannot be loaded (with
            workers: the first worker's reason; the remaining jobs are cancelled).
    """
    if not jobs:
        return
    if options.workers <= 1:
        global _WORKER
        saved = _WORKER
        own = models is None
        _WORKER = (Models.load(config, parts=EXTRACT_PARTS) if models is None else models, config, options.language)
        try:
            for job in jobs:
                key, error, _ = _extract_one(job)
                yield key, error
        finally:
            if own:
                _WORKER[0].close()
            _WORKER = saved
        return
    # spawn: the workers start clean (no forked native-library threads), each loads the models once
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(options.workers, mp_context=context, initializer=_init_worker,
                             initargs=(config, options.language)) as pool:
        for key, error, setup_failed in pool.map(_extract_one, jobs):
            if setup_failed:
                pool.shutdown(wait=True, cancel_futures=True)
                raise PipelineError(f"a worker cannot load the models: {error}")
            yield key, error


def extract_dataset(dataset: Path, out: Path, config: PipelineConfig | None = None,
                    options: ExtractOptions = ExtractOptions(), models: Models | None = None) -> ExtractSummary:
    """Extract every clip of an MMSA-layout dataset not extracted yet, then write the manifest.

    Args:
        dataset: Folder with label.csv and Raw/.
        out: Features folder (created; complete clip files are kept and skipped).
        config: Pipeline options (default ``PipelineConfig()``): the same as inference's.
        options: Workers and decoding language.
        models: Models already loaded for ``config`` (at least ``EXTRACT_PARTS``), used
            with one worker; None loads them (each worker process loads its own anyway).

    Returns:
        Counts and failures of this run.

    Raises:
        PipelineError: label.csv is missing or malformed (a bad id, label or mode, a clip
            listed twice), a folder built from an id leads outside ``Raw`` or ``out`` (all
            before anything is extracted), ``out`` cannot be created, or the manifest cannot
            be written.
        ExtractionError, CheckpointError: The models cannot be loaded.
    """
    config = config or PipelineConfig()
    if models is not None and models.text_encoder is not None:
        # models loaded with weights run the encoder as deep as those weights say: record what was run
        config = replace(config, text=replace(config.text, layers=models.text_encoder.recorded_layers))
    if models is not None:  # and keep the voice states or not as they decided (the manifest says which)
        config = replace(config, voice_states=replace(config.voice_states, kept=models.keeps_voice_states))
    specs = read_label_csv(dataset)
    _check_folders_inside(dataset, out, specs)
    _check_outputs_spare_inputs(dataset, out, specs)
    blocker = not_a_folder(out)
    if blocker is not None:
        raise PipelineError(f"{out}: cannot create the features folder: {blocker} is a file, not a folder; "
                            "name a folder (it is created when missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PipelineError(f"{out}: cannot create the features folder: {e.strerror or e}") from e
    _remove_moved_clips(out, specs)
    done: set[str] = set()
    todo: list[tuple[ClipSpec, Path, Path]] = []
    for spec in specs:
        target = spec.feature_file(out)
        if is_complete_clip(target, spec):
            done.add(spec.key)
        else:
            todo.append((spec, media_path(dataset, spec), target))
    skipped = len(done)
    log.info("%d clips in %s: %d to extract, %d already done", len(specs), dataset, len(todo), skipped)
    failures: list[tuple[str, str]] = []
    for n, (key, error) in enumerate(_run_jobs(todo, config, options, models), 1):
        if error:
            failures.append((key, error))
            log.error("%s failed: %s", key, error)
        else:
            done.add(key)
            log.info("%d/%d %s", n, len(todo), key)
    manifest = _write_manifest(dataset, out, specs, done, failures, config)
    return ExtractSummary(len(todo) - len(failures), skipped, tuple(failures), manifest)


def _write_manifest(dataset: Path, out: Path, specs: Sequence[ClipSpec], done: set[str],
                    failures: Sequence[tuple[str, str]], config: PipelineConfig) -> Path:
    by_split: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    for spec in specs:
        if spec.key in done:  # names built from checked ids: relative to ``out`` by construction
            by_split[spec.split].append({"video_id": spec.video_id, "clip_id": spec.clip_id, "label": spec.label,
                                         "file": f"{spec.split}/{spec.video_id}/{spec.clip_id}.npz"})
    split_of = {s.key: s.split for s in specs}
    manifest = {
        "dataset": str(dataset),
        "text_encoder": config.text.encoder,
        "text_extractor_version": TEXT_EXTRACTOR_VERSION,
        "max_tokens": config.text.max_tokens,
        "text_layers": config.text.layers,
        "asr_model": config.asr.model,
        "frame_fps": config.media.frame_fps,
        "audio_columns": list(audio_columns(config.voice_states.enabled)),
        "voice_states_source": states_source(config.asr.model, config.voice_states),
        "vision_columns": list(face_mod.COLUMNS),
        "text_source": "ASR words (what inference sees); label.csv text stored as label_text",
        "counts": {s: len(v) for s, v in by_split.items()},
        "samples": by_split,
        "failures": [{"clip": k, "split": split_of.get(k, ""), "reason": r} for k, r in failures],
    }
    return _save_manifest(out, manifest)


def _save_manifest(out: Path, manifest: dict[str, Any]) -> Path:
    """``write_manifest``, its failure worded for the user (one line, ``PipelineError``)."""
    try:
        return write_manifest(out, manifest)
    except OSError as e:
        raise PipelineError(f"{out}: cannot write the features manifest: {e.strerror or e}") from e


#: Largest difference allowed between a stored text row and the same words encoded again at the
#: stored depth: float noise of another thread count or batch, far below any token's change.
REENCODE_TOLERANCE = 1e-4


def reencode_text(source: Path, out: Path, text: TextOptions, encoder: TextEncoder | None = None) -> ExtractSummary:
    """A features folder like ``source`` whose text rows are the same words at another depth of its encoder.

    Why: Whisper, the voice and the face cost minutes a clip, the text encoder milliseconds, and
    only the text depends on how many encoder layers the weights tune. The words are the stored
    ASR words (``asr_text``), normalised as ``featurize`` does; voice, face, masks and labels are
    copied as stored. A clip is copied only when its words, encoded again at the stored depth,
    give its stored text rows (same tokens, within ``REENCODE_TOLERANCE``), so the new rows
    belong to the same tokens as its voice and face rows; any other clip is a failure with its
    reason. Resumable like ``extract_dataset``: complete files in ``out`` are kept, and the
    manifest (``source``'s, with the new depth) is written last.

    Args:
        source: A features folder (``model.feature_store`` layout).
        out: The new folder (created); must not be ``source``.
        text: The new text options: the same encoder and token limit as ``source``, any depth.
        encoder: A loaded encoder for ``text`` (None loads one).

    Raises:
        PipelineError: ``source`` is not a features folder, ``out`` is ``source``, or ``text``
            names another encoder or token limit than ``source`` was made with.
        ExtractionError: The encoder cannot be loaded.
    """
    try:
        manifest = read_manifest(source)
    except ValueError as e:
        raise PipelineError(str(e)) from e
    if Path(out).resolve() == Path(source).resolve():
        raise PipelineError(f"{out}: the new features folder must not be the one read ({source})")
    made = (manifest.get("text_encoder"), manifest.get("max_tokens"))
    if made != (text.encoder, text.max_tokens):
        raise PipelineError(f"{source}: text of encoder/max_tokens {made}, asked {(text.encoder, text.max_tokens)}: "
                            "only the depth can change without running the extractors again")
    before = TextEncoder(replace(text, layers=manifest.get("text_layers")))
    after = encoder or TextEncoder(text)
    out.mkdir(parents=True, exist_ok=True)
    kept: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    failures: list[dict[str, str]] = []
    extracted = skipped = 0
    for split, entries in manifest["samples"].items():
        for entry in entries:
            target = out / entry["file"]
            key = f"{entry['video_id']}/{entry['clip_id']}"
            spec = ClipSpec(entry["video_id"], entry["clip_id"], "", float(entry["label"]), split)
            if is_complete_clip(target, spec):
                skipped += 1
            else:
                reason = _reencode_clip(source / entry["file"], target, before, after)
                if reason:
                    failures.append({"clip": key, "split": split, "reason": reason})
                    log.error("%s failed: %s", key, reason)
                    continue
                extracted += 1
            kept[split].append(entry)
        log.info("%s: %d clips re-encoded so far", split, extracted)
    new = {k: v for k, v in manifest.items() if k != "format"}
    new.update(text_layers=after.recorded_layers, counts={s: len(v) for s, v in kept.items()}, samples=kept,
               failures=list(manifest.get("failures", [])) + failures, text_from=str(source))
    path = _save_manifest(out, new)
    return ExtractSummary(extracted, skipped, tuple((f["clip"], f["reason"]) for f in failures), path)


def _reencode_clip(path: Path, target: Path, before: TextEncoder, after: TextEncoder) -> str:
    """Write ``target``: ``path``'s clip with its words' text rows from ``after``; returns why not, or ""."""
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    words = [w for w in (normalise_text(t) for t in str(arrays["asr_text"]).split()) if w]
    if not words:
        return f"{path}: no stored words to encode"
    again = before.encode_words(words).values
    stored = arrays["text"]
    if again.shape != stored.shape or float(np.abs(again - stored).max()) > REENCODE_TOLERANCE:
        return (f"{path}: its stored words do not encode to its stored text rows ({again.shape} vs {stored.shape}); "
                "extract it again")
    arrays["text"] = after.encode_words(words).values
    write_via_atomic(target, lambda tmp: np.savez(tmp, **arrays))
    return ""
