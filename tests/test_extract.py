"""Retraining on a user's dataset: extract features as inference does, train on them, score with them.

The equality test scores one GRID clip through ``score_video`` and extracts it through
``pipeline extract``, and checks that the model is fed exactly the same arrays. The
end-to-end test builds a tiny MMSA-layout dataset from the 10 GRID clips with made-up
labels (alternating +2/-2; 6 train, 2 valid, 2 test), extracts, trains and scores.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from extractors import face as face_mod
from extractors.voice_states import audio_columns
from model.schema import MODALITIES
from storage.locations import REPO_ROOT, shared_data_dir

GRID = shared_data_dir() / "clips" / "grid"
#: "bin blue at f two now": short and unpunctuated, so scoring makes it one utterance,
#: as extraction does with every clip.
ONE_UTTERANCE_CLIP = "bbaf2n"

requires_grid = pytest.mark.skipif(not (GRID / "transcripts.csv").is_file(),
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


@pytest.fixture(scope="module")
def models(loaded_models: object) -> object:
    """Every model, loaded once per test run (conftest's ``loaded_models``)."""
    return loaded_models


class _RecordingMiar:
    """The loaded weights as ``score_video`` calls them, keeping every input they are fed."""

    def __init__(self, miar: object) -> None:
        self._miar = miar
        self.modalities = miar.modalities  # type: ignore[attr-defined]
        self.fed: list[object] = []

    def predict(self, samples: Sequence[object]) -> np.ndarray:
        self.fed.extend(samples)
        return self._miar.predict(samples)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:  # every other reading (per-modality heads, ...) as loaded
        return getattr(self._miar, name)


@pytest.mark.slow
@requires_grid
def test_scoring_and_extraction_feed_the_model_identical_inputs(models, tmp_path: Path):
    from model.feature_store import load_split
    from pipeline.config import PipelineConfig
    from pipeline.extract import extract_dataset
    from pipeline.score import score_video

    config = PipelineConfig()
    clip = GRID / f"{ONE_UTTERANCE_CLIP}.mpg"
    recorder = _RecordingMiar(models.miar)
    result = score_video(clip, config, dataclasses.replace(models, miar=recorder))
    assert result.status == "ok" and len(result.utterances) == 1 and len(recorder.fed) == 1

    root = tmp_path / "one"
    (root / "Raw" / "grid").mkdir(parents=True)
    (root / "Raw" / "grid" / f"{ONE_UTTERANCE_CLIP}.mp4").symlink_to(clip)
    _write_labels(root, [["grid", ONE_UTTERANCE_CLIP, "bin blue at f two now", 1.0, "train"]])
    summary = extract_dataset(root, tmp_path / "features", config, models=models)
    assert summary.extracted == 1 and summary.failures == ()
    (stored,), labels, keys = load_split(tmp_path / "features", "train")
    assert labels.tolist() == [1.0] and keys == [f"grid/{ONE_UTTERANCE_CLIP}"]

    scored = recorder.fed[0]
    for name in MODALITIES:
        (values, mask), (stored_values, stored_mask) = scored.modality(name), stored.modality(name)
        assert values is not None and stored_values is not None, f"{name} missing (GRID has voice and a face)"
        assert stored_values.dtype == values.dtype and stored_values.shape == values.shape, name
        np.testing.assert_array_equal(stored_values, values, err_msg=name)
        np.testing.assert_array_equal(stored_mask, mask, err_msg=f"{name}_mask")
    with np.load(tmp_path / "features" / "train" / "grid" / f"{ONE_UTTERANCE_CLIP}.npz") as z:
        assert str(z["asr_text"]) == result.utterances[0].utterance.text


@pytest.mark.slow
@requires_grid
def test_extract_train_and_score(dataset: tuple[Path, list[list[object]]], tmp_path: Path):
    from model.feature_store import load_split
    from pipeline.cli import main as cli_main
    from training.train import main as train_main

    root, rows = dataset
    features = tmp_path / "features"
    assert cli_main(["extract", "--dataset", str(root), "--out", str(features), "-q"]) == 0
    manifest = json.loads((features / "manifest.json").read_text())
    assert manifest["counts"] == {"train": 6, "valid": 2, "test": 2}
    assert manifest["failures"] == []
    umask = os.umask(0o022)
    os.umask(umask)
    assert (features / "manifest.json").stat().st_mode & 0o777 == 0o666 & ~umask  # as any new file, not 0600
    assert manifest["audio_columns"] == list(audio_columns(True))  # descriptors + Whisper states, as the weights read
    assert manifest["voice_states_source"] == "transcription pass"  # kept from Whisper's own pass (tiny.en)
    assert manifest["vision_columns"] == list(face_mod.COLUMNS)
    first = features / manifest["samples"]["train"][0]["file"]
    with np.load(first) as z:
        n_tokens = len(z["text_mask"])
        assert z["text"].shape[0] == n_tokens > 2 and z["text"].dtype == np.float32
        assert z["audio"].shape == (n_tokens, len(audio_columns(True))) and z["audio_mask"].any()
        assert z["vision"].shape == (n_tokens, len(face_mod.COLUMNS)) and z["vision_mask"].any()  # GRID shows a face
        assert float(z["label"]) == 2.0 and str(z["clip_id"]) == rows[0][1]
        assert "blue" in str(z["label_text"]) and str(z["asr_text"])
    samples, labels, keys = load_split(features, "train")
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
    assert config["training"]["sizes"] == {"features": 6} and config["training"]["selection_size"] == 2  # valid
    assert config["normalisation"]["audio"]["trained"]
    # the weights say which voice states they learned from, so that inference computes the same kind
    assert config["voice_states_source"] == "transcription pass"
    from extractors.voice_states import states_kept_from_transcription

    assert states_kept_from_transcription(config)

    out = tmp_path / "out"
    clip = GRID / f"{rows[8][1]}.mpg"
    assert cli_main(["run", str(clip), "--weights", str(weights), "--out", str(out), "--no-progress", "-q"]) == 0
    scored = list(csv.DictReader(open(out / f"{clip.stem}.csv", encoding="utf-8")))
    assert len(scored) >= 1
    assert all(-3.0 <= float(r["sentiment"]) <= 3.0 and r["polarity"] in {"negative", "neutral", "positive"}
               for r in scored)


# --- without models -----------------------------------------------------------------------


@pytest.mark.slow
@requires_grid
def test_extract_with_worker_processes_ends_quietly(dataset: tuple[Path, list[list[object]]], tmp_path: Path):
    """Each worker releases its models before its interpreter goes: stderr holds no traceback of a
    landmarker closed by garbage collection at exit (MediaPipe's ``__del__``), and the exit code is 0."""
    import subprocess
    import sys

    root, rows = dataset
    _write_labels(root, rows[:2])
    features = tmp_path / "features"
    done = subprocess.run([sys.executable, "-m", "pipeline", "extract", "--dataset", str(root), "--out",
                           str(features), "--workers", "2", "-q"], capture_output=True, text=True, timeout=600,
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr[-2000:]
    assert json.loads((features / "manifest.json").read_text())["counts"] == {"train": 2, "valid": 0, "test": 0}


def test_models_load_refuses_unknown_parts():
    from pipeline.config import PipelineConfig
    from pipeline.models import Models

    with pytest.raises(ValueError, match="unknown parts"):
        Models.load(PipelineConfig(), parts=("asr", "miar", "vision"))


def test_models_load_closes_what_it_loaded_when_a_later_part_fails(monkeypatch: pytest.MonkeyPatch):
    import extractors.face
    import extractors.transcript
    from pipeline.config import PipelineConfig
    from pipeline.models import Models

    closed: list[str] = []

    class Face:
        def __init__(self, options: object) -> None:
            pass

        def close(self) -> None:
            closed.append("face")

    def no_whisper(*args: object) -> None:
        raise RuntimeError("whisper missing")

    monkeypatch.setattr(extractors.face, "FaceExtractor", Face)
    monkeypatch.setattr(extractors.transcript, "Transcriber", no_whisper)
    with pytest.raises(RuntimeError, match="whisper missing"):
        Models.load(dataclasses.replace(PipelineConfig(), torch_threads=0), parts=("face", "asr"))
    assert closed == ["face"]


def test_featurize_refuses_unknown_segmentation_and_missing_parts(tmp_path: Path):
    from pipeline.config import PipelineConfig
    from pipeline.features import featurize
    from pipeline.models import Models

    models = Models(ffmpeg=Path("ffmpeg"))
    with pytest.raises(ValueError, match="segmentation"):
        featurize(tmp_path / "x.mp4", PipelineConfig(), models, segmentation="sentences")
    with pytest.raises(ValueError, match=r"\['asr', 'text'\]"):  # face: only for a video track
        featurize(tmp_path / "x.mp4", PipelineConfig(), models)


def test_label_csv_errors_name_the_row(tmp_path: Path):
    from pipeline.errors import PipelineError
    from pipeline.extract import read_label_csv

    _write_labels(tmp_path, [["v", "c1", "fine", 1.0, "train"], ["v", "c2", "bad", 4.0, "train"]])
    with pytest.raises(PipelineError, match=r"label.csv:3: label 4.0 outside \[-3, 3\]"):
        read_label_csv(tmp_path)
    _write_labels(tmp_path, [["v", "c1", "fine", 1.0, "dev"]])
    with pytest.raises(PipelineError, match="mode 'dev'"):
        read_label_csv(tmp_path)


@pytest.mark.slow
def test_reencode_text_changes_only_the_text_depth(tmp_path: Path):
    """A features folder at depth 2 becomes one at depth 0 (every layer tuned in MIAR) without the
    extractors: the text rows are the stored words' embeddings, everything else is copied; a clip whose
    stored words do not give its stored rows is a failure, never a file; a second run skips what is done."""
    from extractors.text import TextEncoder, TextOptions
    from model.batch import SampleInput
    from model.feature_store import load_split, read_manifest, save_clip, write_manifest
    from pipeline.errors import PipelineError
    from pipeline.extract import reencode_text

    deep, shallow = TextEncoder(TextOptions(layers=2)), TextEncoder(TextOptions(layers=0))
    source, out = tmp_path / "depth2", tmp_path / "depth0"
    words = {"a": "Don't you think it's great?", "b": "not bad at all", "c": "the words changed after encoding"}
    widths = {"text": deep.dim, "audio": 3, "vision": 2}
    rng = np.random.default_rng(0)
    samples = {}
    for clip, text in words.items():
        tokens = deep.encode_words(text.replace("?", "").lower().split())
        n = len(tokens.word_ids)
        samples[clip] = SampleInput(text=tokens.values, text_mask=np.ones(n, bool),
                                    audio=rng.normal(size=(n, 3)).astype(np.float32), audio_mask=np.ones(n, bool))
        stored = text if clip != "c" else "the words were changed"  # c's stored words are not what was encoded
        save_clip(source / "train" / "v" / f"{clip}.npz", samples[clip], widths, label=1.5,
                  strings={"video_id": "v", "clip_id": clip, "asr_text": stored, "label_text": ""})
    entries = [{"video_id": "v", "clip_id": c, "label": 1.5, "file": f"train/v/{c}.npz"} for c in words]
    write_manifest(source, {"text_encoder": deep.name, "max_tokens": 128, "text_layers": 2,
                            "samples": {"train": entries}, "failures": []})

    summary = reencode_text(source, out, TextOptions(layers=0), shallow)
    assert (summary.extracted, summary.skipped) == (2, 0)
    assert [key for key, _ in summary.failures] == ["v/c"] and "extract it again" in summary.failures[0][1]
    assert not (out / "train" / "v" / "c.npz").exists()
    manifest = read_manifest(out)
    assert manifest["text_layers"] == 0 and manifest["counts"]["train"] == 2
    got, labels, keys = load_split(out, "train")
    assert keys == ["v/a", "v/b"] and np.all(labels == 1.5)
    for sample, clip in zip(got, ("a", "b")):
        expected = shallow.encode_words(words[clip].replace("?", "").lower().split()).values
        np.testing.assert_array_equal(sample.text, expected)
        assert not np.allclose(sample.text, samples[clip].text)  # another depth indeed
        np.testing.assert_array_equal(sample.audio, samples[clip].audio)
        assert sample.vision is None
    again = reencode_text(source, out, TextOptions(layers=0), shallow)
    assert (again.extracted, again.skipped, len(again.failures)) == (0, 2, 1)

    with pytest.raises(PipelineError, match="only the depth can change"):
        reencode_text(source, tmp_path / "x", TextOptions(layers=0, max_tokens=64), shallow)
    with pytest.raises(PipelineError, match="must not be the one read"):
        reencode_text(source, source, TextOptions(layers=0), shallow)
