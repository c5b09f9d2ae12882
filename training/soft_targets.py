"""Soft targets: a teacher's scores on the training text, kept in one small file the recipe reads.

Why a file in the repository and not a cache: the teacher (``training.teacher``, all-mpnet-base-v2
with its top layers tuned) costs about an hour and a half of 2 CPU cores to build and score, and the
caches outside the repository do not last between sessions. Its scores are one number per training
text, so a recipe that distils it (``TrainOptions.teacher_weight``) names the file and runs without
the teacher, reproducibly.

Format: CSV, gzip-compressed when the name ends in ``.gz``, header ``source,id,teacher``: the
training source ("mosei", "sst5_phrases", ...), the text's id in that source's corpus
(``training.corpora``: ids only, never the text or its label) and the teacher's score on the MOSI
scale. Extra columns are ignored on reading.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from storage.files import atomic_path

__all__ = ["SCORES_COLUMNS", "write_scores", "read_scores", "blend_labels"]

#: The columns every soft-target file has, in this order.
SCORES_COLUMNS: tuple[str, ...] = ("source", "id", "teacher")


def write_scores(path: Path, rows: Iterable[tuple[str, str, float]]) -> int:
    """Write ``(source, id, score)`` rows (atomically: a failed write leaves no file); returns the count."""
    path = Path(path)
    count = 0
    with atomic_path(path) as tmp:
        raw = gzip.open(tmp, "wt", encoding="utf-8", newline="") if path.suffix == ".gz" else \
            open(tmp, "w", encoding="utf-8", newline="")
        with raw as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(SCORES_COLUMNS)
            for source, text_id, score in rows:
                writer.writerow([source, text_id, f"{float(score):.4f}"])
                count += 1
    return count


def read_scores(path: Path) -> dict[str, dict[str, float]]:
    """The scores of a soft-target file: ``source -> {id: score}``.

    Raises:
        ValueError: Not such a file (columns missing, a score that is not a finite number, an id twice).
        OSError: It cannot be read.
    """
    path = Path(path)
    data = path.read_bytes()
    text = gzip.decompress(data).decode("utf-8") if path.suffix == ".gz" else data.decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in SCORES_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"{path}: not a soft-target file (columns {missing} missing; expected {SCORES_COLUMNS})")
    out: dict[str, dict[str, float]] = {}
    for line, row in enumerate(reader, start=2):
        try:
            score = float(row["teacher"])
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise ValueError(f"{path}, line {line}: score {row['teacher']!r} is not a finite number")
        of_source = out.setdefault(row["source"], {})
        if row["id"] in of_source:
            raise ValueError(f"{path}, line {line}: {row['source']} id {row['id']!r} appears twice")
        of_source[row["id"]] = score
    return out


def blend_labels(labels: np.ndarray, ids: Sequence[str], scores: dict[str, float], weight: float
                 ) -> tuple[np.ndarray, int]:
    """``(1 - weight) * label + weight * teacher`` where the teacher scored the text; the label elsewhere.

    Returns:
        The blended labels (a new array, float32) and how many texts had a teacher score.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"teacher weight {weight} must be in [0, 1]")
    teacher = np.array([scores.get(i, np.nan) for i in ids], np.float64)
    have = ~np.isnan(teacher)
    out = np.asarray(labels, np.float64).copy()
    out[have] = (1.0 - weight) * out[have] + weight * teacher[have]
    return out.astype(np.float32), int(have.sum())
