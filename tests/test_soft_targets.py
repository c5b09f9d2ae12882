"""Soft targets (training.soft_targets): the file a distilling recipe reads, and how it blends into labels."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import requires_shared
from training.loop import TrainOptions, options_key
from training.soft_targets import blend_labels, read_scores, write_scores

ROWS = [("mosi", "a_1", 1.23456), ("mosi", "a_2", -0.5), ("sst5_phrases", "phrase/7", 2.0)]


@pytest.mark.parametrize("name", ["scores.csv", "scores.csv.gz"])
def test_scores_written_are_read_back(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert write_scores(path, iter(ROWS)) == 3
    if name.endswith(".gz"):
        assert gzip.decompress(path.read_bytes()).startswith(b"source,id,teacher\n")
    assert read_scores(path) == {"mosi": {"a_1": 1.2346, "a_2": -0.5}, "sst5_phrases": {"phrase/7": 2.0}}


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    def rows():
        yield ROWS[0]
        raise RuntimeError("teacher crashed")

    with pytest.raises(RuntimeError):
        write_scores(tmp_path / "s.csv", rows())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, message", [
    ("source,id,score\nmosi,a,1\n", "columns"),
    ("source,id,teacher\nmosi,a,nan\n", "not a finite number"),
    ("source,id,teacher\nmosi,a,x\n", "not a finite number"),
    ("source,id,teacher\nmosi,a,1\nmosi,a,2\n", "twice"),
])
def test_files_that_are_not_soft_targets_are_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_scores(tmp_path / "bad.csv")


def test_blending_moves_only_the_texts_the_teacher_scored() -> None:
    labels = np.array([2.0, -1.0, 0.0], np.float32)
    blended, count = blend_labels(labels, ["x", "y", "z"], {"x": 0.0, "z": 3.0}, 0.25)
    assert count == 2
    np.testing.assert_allclose(blended, [1.5, -1.0, 0.75])
    assert labels.tolist() == [2.0, -1.0, 0.0]  # the caller's array is left alone
    assert blend_labels(labels, ["x", "y", "z"], {"x": 0.0}, 1.0)[0].tolist() == [0.0, -1.0, 0.0]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        blend_labels(labels, ["x"], {}, 1.5)


def test_recipes_without_a_teacher_keep_their_run_keys() -> None:
    """The new options at their defaults leave the options key (and so every cached run's folder) as it was."""
    plain = TrainOptions()
    assert options_key(plain) == options_key(replace(plain, teacher_scores=None, teacher_weight=0.0))
    assert options_key(replace(plain, teacher_scores="t.csv", teacher_weight=0.3)) != options_key(plain)


@requires_shared
def test_the_recipe_blends_the_teachers_scores_into_the_training_labels(tmp_path: Path) -> None:
    from training.assemble import load_training_data
    from training.corpora import load_mosi

    mosi = load_mosi()
    train, dev = mosi["train"], mosi["dev"]
    scores = tmp_path / "t.csv"
    write_scores(scores, [("mosi", train.ids[0], 3.0), ("mosi", train.ids[5], -3.0), ("mosi", dev.ids[0], 3.0)])
    options = TrainOptions(sources=("mosi",), teacher_scores=str(scores), teacher_weight=0.5)
    data = load_training_data(options, cache=tmp_path / "cache")
    expected = train.labels.copy()
    expected[[0, 5]] = 0.5 * expected[[0, 5]] + 0.5 * np.array([3.0, -3.0])
    np.testing.assert_allclose(data.labels["mosi"], expected, rtol=1e-6)
    np.testing.assert_array_equal(data.select_labels, dev.labels)  # selection keeps its labels
    assert data.notes["teacher"]["texts_blended"] == {"mosi": 2} and data.notes["teacher"]["weight"] == 0.5
    with pytest.raises(ValueError, match="scores none"):
        write_scores(scores, [("mosei", "x", 1.0)])
        load_training_data(options, cache=tmp_path / "cache")


def test_the_committed_teacher_scores_cover_every_training_text_of_its_sources() -> None:
    from storage.locations import REPO_ROOT
    from training.evaluate import TEACHER_SCORES

    scores = read_scores(REPO_ROOT / TEACHER_SCORES)
    sizes = {name: len(of) for name, of in scores.items()}
    assert sizes == {"mosi": 1281, "mosei": 14700, "vader": 16658, "sst5": 8544, "sst5_phrases": 44000}
    values = np.array([v for of in scores.values() for v in of.values()])
    assert values.min() >= -3.0 and values.max() <= 3.0 and values.std() > 0.5


@requires_shared
def test_the_committed_teacher_scores_name_the_corpora_ids() -> None:
    from storage.locations import REPO_ROOT
    from training.assemble import TEXT_TRAINING, training_text
    from training.evaluate import TEACHER_SCORES

    scores = read_scores(REPO_ROOT / TEACHER_SCORES)
    for name, corpus in training_text(None, TEXT_TRAINING).items():
        assert set(scores[name]) == set(corpus.ids), name
