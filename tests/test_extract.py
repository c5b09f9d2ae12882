"""Retraining on a user's dataset: extract features as inference does, train on them, score with them.

A tiny MMSA-layout dataset is built from the 10 GRID clips with made-up labels
(alternating +2/-2; 6 train, 2 valid, 2 test).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from extractors import face as face_mod
from extractors import voice as voice_mod

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MIAR_SHARED") or REPO_ROOT.parent / "shared")
GRID = SHARED / "data" / "clips" / "grid"

pytestmark = pytest.mark.skipif(not (GRID / "transcripts.csv").is_file(),
                                reason=f"GRID clips not found at {GRID} (set MIAR_SHARED)")


def _write_labels(dataset: Path, rows: list[list[object]]) -> None:
    with open(dataset / "label.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video_id", "clip_id", "text", "label", "mode"])
        writer.writerows(rows)


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, list[list[object]]]:
    root = tmp_path / "mydata"
    raw = root / "Raw" / "grid"
    raw.mkdir(parents=True)
    rows: list[list[object]] = []
    for i, entry in enumerate(csv.DictReader(open(GRID / "transcripts.csv", encoding="utf-8"))):
        stem = Path(entry["path"]).stem
        (raw / f"{stem}.mp4").symlink_to(GRID / entry["path"])  # ffmpeg reads the content, not the ending
        split = "train" if i < 6 else "valid" if i < 8 else "test"
        rows.append(["grid", stem, entry["transcript"], 2.0 if i % 2 == 0 else -2.0, split])
    _write_labels(root, rows)
    return root, rows


def test_extract_train_and_score(dataset: tuple[Path, list[list[object]]], tmp_path: Path):
    from model.train import load_feature_split
    from model.train import main as train_main
    from pipeline.cli import main as cli_main

    root, rows = dataset
    features = tmp_path / "features"
    assert cli_main(["extract", "--dataset", str(root), "--out", str(features), "-q"]) == 0
    manifest = json.loads((features / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 6, "valid": 2, "test": 2}
    assert manifest["failures"] == []
    assert manifest["audio_columns"] == list(voice_mod.COLUMNS)
    assert manifest["vision_columns"] == list(face_mod.COLUMNS)
    first = features / manifest["samples"]["train"][0]["file"]
    with np.load(first) as z:
        n_tokens = len(z["text_mask"])
        assert z["text"].shape[0] == n_tokens > 2 and z["text"].dtype == np.float32
        assert z["audio"].shape == (n_tokens, len(voice_mod.COLUMNS)) and z["audio_mask"].any()
        assert z["vision"].shape == (n_tokens, len(face_mod.COLUMNS)) and z["vision_mask"].any()  # GRID shows a face
        assert float(z["label"]) == 2.0 and str(z["clip_id"]) == rows[0][1]
        assert "blue" in str(z["label_text"]) and str(z["asr_text"])
    samples, labels, keys = load_feature_split(features, "train")
    assert len(samples) == 6 and labels.tolist() == [2.0, -2.0] * 3 and keys[0] == f"grid/{rows[0][1]}"

    # resumable: a second run extracts nothing; a broken clip is listed and makes the run exit 1
    stamp = first.stat().st_mtime_ns
    (root / "Raw" / "broken").mkdir()
    (root / "Raw" / "broken" / "c1.mp4").write_bytes(b"not a video at all")
    _write_labels(root, [*rows, ["broken", "c1", "nothing", 0.0, "train"]])
    assert cli_main(["extract", "--dataset", str(root), "--out", str(features), "-q"]) == 1
    manifest = json.loads((features / "manifest.json").read_text())
    assert first.stat().st_mtime_ns == stamp
    assert manifest["counts"]["train"] == 6
    assert [f["clip"] for f in manifest["failures"]] == ["broken/c1"] and manifest["failures"][0]["reason"]

    weights = tmp_path / "weights"
    assert train_main(["--features", str(features), "--out", str(weights), "--epochs", "2", "-q"]) == 0
    config = json.loads((weights / "config.json").read_text())
    assert config["trained_modalities"] == ["text", "audio", "vision"]
    assert config["training"]["sizes"] == {"train": 6, "valid": 2}
    assert config["normalisation"]["audio"]["trained"]

    out = tmp_path / "out"
    clip = GRID / f"{rows[8][1]}.mpg"
    assert cli_main(["run", str(clip), "--weights", str(weights), "--out", str(out), "--no-progress", "-q"]) == 0
    scored = list(csv.DictReader(open(out / f"{clip.stem}.csv", encoding="utf-8")))
    assert len(scored) >= 1
    assert all(-3.0 <= float(r["sentiment"]) <= 3.0 and r["polarity"] in {"negative", "neutral", "positive"}
               for r in scored)
