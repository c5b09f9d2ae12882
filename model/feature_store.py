"""The features folder: model inputs of a labelled dataset stored on disk, defined once.

``python -m pipeline extract`` writes it (features made by the same stage sequence that
scores videos); training reads it with NumPy only. Layout::

    FEATURES_DIR/manifest.json                          what made the features (see write_manifest)
    FEATURES_DIR/<split>/<video_id>/<clip_id>.npz       one clip

Each ``.npz`` holds ``text`` (Lt, Dt) float32 and ``text_mask`` (Lt,) bool, ``audio`` /
``vision`` (L, D) float32 with their masks (0 rows when the modality is missing in the
clip), ``label`` float32 scalar, and strings ``video_id``, ``clip_id``, ``asr_text``,
``label_text``. Files are written atomically, so one that exists is complete.

The labelled dataset it is made from has MMSA's layout, ``DATASET/label.csv`` (one row per clip:
``video_id,clip_id,text,label,mode``); ``read_label_rows`` is the one reader of such a file, for
``pipeline extract`` and for the training corpora (MOSI's copy has ``id`` instead of the two ids).
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.batch import SampleInput
from model.schema import MODALITIES
from storage.files import write_text_atomic, write_via_atomic

__all__ = ["FEATURES_FORMAT", "MANIFEST_FILE", "SPLITS", "LABEL_FILE", "LabelFileError", "read_label_rows",
           "sample_arrays", "sample_from_arrays", "save_clip", "write_manifest", "read_manifest", "load_split"]

#: Version of the layout; readers refuse any other.
FEATURES_FORMAT = "miar-features-v1"
MANIFEST_FILE = "manifest.json"
#: MMSA's split names, in the order they are listed.
SPLITS: tuple[str, ...] = ("train", "valid", "test")
#: The labelled dataset's one file of labels and texts (MMSA layout).
LABEL_FILE = "label.csv"


class LabelFileError(ValueError):
    """A label.csv that cannot be read as one; the message is one line naming ``PATH:LINE``."""


def read_label_rows(path: Path, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of an MMSA-style label.csv, one at a time, as ``(line, {column: value})``.

    The file is data, not trusted: it is read as UTF-8 (a byte-order mark is fine, not a column
    name), row by row, so a problem is reported at its line as soon as it is reached. Header names
    are stripped; blank lines are skipped; a row maps every header name to its value as written.
    ``line`` is where the row ends (a quoted field may span lines).

    Args:
        path: The label file (``DATASET/label.csv``).
        columns: The columns the caller reads: the header must name each.

    Raises:
        LabelFileError: The path is not a regular file (a FIFO would block the read forever), or
            at ``path:LINE``: a byte that is not UTF-8, text that is not CSV, a field over
            ``csv.field_size_limit()`` characters, no header, a missing column, a row with more
            or fewer fields than the header.
        OSError: The file cannot be opened (missing, unreadable); callers word it for their users.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise LabelFileError(f"{path}: not a regular file")
    with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: a byte-order mark is not a column name
        reader = csv.reader(f)
        try:
            header = [name.strip() for name in next(reader, [])]
            if not any(header):
                raise LabelFileError(f"{path}:1: no header (MMSA layout: {','.join(columns)})")
            missing = [c for c in columns if c not in header]
            if missing:
                raise LabelFileError(f"{path}:1: missing columns {missing}, found {_shown(','.join(header))} "
                                     f"(MMSA layout: {','.join(columns)})")
            for values in reader:
                if not values:  # a blank line
                    continue
                if len(values) != len(header):
                    raise LabelFileError(f"{path}:{reader.line_num}: {len(values)} fields, the header has "
                                         f"{len(header)}")
                yield reader.line_num, dict(zip(header, values))
        except csv.Error as e:
            raise LabelFileError(f"{path}:{reader.line_num}: {_csv_problem(e, path.name)}") from e
        except UnicodeDecodeError as e:
            line, byte = _first_undecodable_line(path)
            raise LabelFileError(f"{path}:{line}: byte 0x{byte:02x} is not UTF-8 (Latin-1 or another code "
                                 f"page?); save {path.name} as UTF-8") from e


def _csv_problem(error: csv.Error, name: str) -> str:
    text = str(error)
    if "field larger than field limit" in text:
        return (f"a field is longer than {csv.field_size_limit():,} characters (csv.field_size_limit); "
                f"is this the dataset's {name}?")
    return f"not readable as CSV: {text}"


def _first_undecodable_line(path: Path) -> tuple[int, int]:
    """(line, first bad byte) of the first line of ``path`` that is not UTF-8; (0, 0) if none is.

    UTF-8 never splits a character across a newline, so line by line is exact; read again
    only when decoding already failed.
    """
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return n, raw[e.start]
    return 0, 0


def _shown(value: str, limit: int = 60) -> str:
    """``value`` quoted for a one-line message: control characters escaped, long values cut."""
    return repr(value[:limit]) + (f"... ({len(value):,} characters)" if len(value) > limit else "")


def sample_arrays(sample: SampleInput, widths: Mapping[str, int]) -> dict[str, np.ndarray]:
    """The arrays of one sample as stored: every modality present, missing ones as 0 rows.

    Args:
        sample: The model input.
        widths: Feature width per modality ({"text": 384, "audio": 34, "vision": 56}).
    """
    arrays: dict[str, np.ndarray] = {}
    for name in MODALITIES:
        values, mask = sample.modality(name)
        if values is None:
            arrays[name] = np.zeros((0, widths[name]), np.float32)
            arrays[f"{name}_mask"] = np.zeros(0, bool)
        else:
            arrays[name] = np.asarray(values, np.float32)
            arrays[f"{name}_mask"] = np.asarray(mask, bool)
    return arrays


def sample_from_arrays(arrays: Mapping[str, np.ndarray]) -> SampleInput:
    """The ``SampleInput`` of stored arrays (a modality with 0 rows is missing)."""
    parts: dict[str, Any] = {}
    for name in MODALITIES:
        values = arrays[name]
        if name == "text" or len(values):
            parts[name], parts[f"{name}_mask"] = values, np.asarray(arrays[f"{name}_mask"], bool)
    return SampleInput(**parts)


def save_clip(path: Path, sample: SampleInput, widths: Mapping[str, int], *, label: float,
              strings: Mapping[str, str]) -> None:
    """Write one clip's ``.npz`` atomically (an existing file is therefore complete).

    Args:
        path: ``<split>/<video_id>/<clip_id>.npz`` under the features folder.
        sample: The model input.
        widths: Feature width per modality.
        label: Sentiment in [-3, 3].
        strings: ``video_id``, ``clip_id``, ``asr_text``, ``label_text``.
    """
    arrays = sample_arrays(sample, widths)
    arrays["label"] = np.float32(label)
    for key, value in strings.items():
        arrays[key] = np.array(value)
    write_via_atomic(path, lambda tmp: np.savez(tmp, **arrays))


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``manifest.json`` (``format`` is set here) atomically; returns its path.

    The manifest records what made the features: ``dataset``, ``text_encoder``,
    ``text_extractor_version``, ``max_tokens``, ``asr_model``, ``frame_fps``,
    ``audio_columns``, ``vision_columns``, ``counts`` and ``samples`` per split (each sample
    ``{"video_id", "clip_id", "label", "file"}`` with ``file`` relative to the folder), and
    ``failures``.
    """
    path = folder / MANIFEST_FILE
    write_text_atomic(path, json.dumps({"format": FEATURES_FORMAT, **manifest}, indent=1) + "\n")
    return path


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a features folder.

    Raises:
        ValueError: Missing, unreadable, or not of ``FEATURES_FORMAT``.
    """
    path = folder / MANIFEST_FILE
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a features manifest ({e}); run 'python -m pipeline extract' first") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FEATURES_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{path}: format {found!r}, expected {FEATURES_FORMAT!r}")
    return manifest


def load_split(folder: Path, split: str) -> tuple[list[SampleInput], np.ndarray, list[str]]:
    """Samples, labels and ``video_id/clip_id`` keys of one split, in manifest order.

    Raises:
        ValueError: Not a features folder of this format.
    """
    manifest = read_manifest(folder)
    samples, labels, keys = [], [], []
    for entry in manifest["samples"].get(split, []):
        with np.load(folder / entry["file"]) as z:
            samples.append(sample_from_arrays(z))
            labels.append(float(z["label"]))
        keys.append(f"{entry['video_id']}/{entry['clip_id']}")
    return samples, np.asarray(labels, np.float32), keys
