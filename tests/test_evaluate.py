"""The evaluation's statistics and tables (training/baselines.py, training/evaluate.py).

Synthetic arrays with known answers: the paired bootstrap covers the true difference and
collapses to 0 for identical models, the neutral band counts what the outputs call neutral,
the closed-form ridge is scikit-learn's and picks the strength the selection sets favour,
VADER lands on the MOSI scale (``requires_train``: vaderSentiment is in requirements-train.txt, which
CI does not install, so it skips there with that reason), and the printed tables carry every model,
set and interval.
One slow test scores the shipped weights on MOSI test (MOSEI and neutral keys present).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from model.metrics import accuracy_rows, pearson_rows
from model.schema import NEUTRAL_BAND
from tests.conftest import requires_shared
from training import baselines as bl
from training import evaluate as ev
from training.corpora import make_corpus


def _correlated(n: int, noise: float, rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    return y + rng.normal(0.0, noise, n)


def test_paired_bootstrap_covers_the_true_difference_in_r() -> None:
    true_diff = 1 / np.sqrt(1.25) - 1 / np.sqrt(2.0)  # r of y + N(0, s) with y ~ N(0, 1) is 1/sqrt(1 + s^2)
    covered = 0
    for seed in range(20):  # a 95% interval misses 1 time in 20 on average: count, do not trust one draw
        rng = np.random.default_rng(seed)
        n = 500
        y = rng.normal(0.0, 1.0, n)
        a, b = _correlated(n, 0.5, rng, y), _correlated(n, 1.0, rng, y)
        interval = bl.paired_bootstrap(pearson_rows, y, a, b, resamples=300)
        covered += interval.low <= true_diff <= interval.high
        assert interval.low <= interval.diff <= interval.high and interval.excludes_zero
    assert covered >= 16
    assert bl.paired_bootstrap(pearson_rows, y, a, b) == bl.paired_bootstrap(pearson_rows, y, a, b)  # seeded


def test_paired_bootstrap_of_accuracy_and_of_identical_models() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    truth = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < 0.8, truth, 1 - truth)  # right 80% of the time
    b = np.where(rng.random(n) < 0.7, truth, 1 - truth)  # right 70%
    interval = bl.paired_bootstrap(accuracy_rows, truth, a, b)
    assert interval.low <= 0.1 <= interval.high and interval.excludes_zero
    same = bl.paired_bootstrap(pearson_rows, truth.astype(float), a.astype(float), a.astype(float))
    assert (same.diff, same.low, same.high) == (0.0, 0.0, 0.0) and not same.excludes_zero
    with pytest.raises(ValueError, match="equally long"):
        bl.paired_bootstrap(accuracy_rows, truth, a, b[:-1])


def test_neutral_band_precision_and_recall() -> None:
    pred = np.array([0.0, 0.49, -0.49, 0.5, -0.5, 2.0, 0.1])
    neutral = np.array([True, True, False, True, False, False, False])
    band = bl.neutral_band(pred, neutral)
    # inside the band: 0.0, 0.49, -0.49, 0.1 (|0.5| is polarised, as the outputs print it)
    assert (band.n_predicted, band.n_neutral) == (4, 3)
    assert band.precision == pytest.approx(2 / 4) and band.recall == pytest.approx(2 / 3)
    empty = bl.neutral_band(np.array([2.0]), np.array([False]))
    assert np.isnan(empty.precision) and np.isnan(empty.recall)
    assert NEUTRAL_BAND == 0.5


def test_neutral_rows_per_set() -> None:
    labels = np.array([0.0, 0.2, -0.25, 0.3, 1e-4], np.float32)
    assert bl.neutral_rows("mosi", labels).tolist() == [True, False, False, False, False]
    assert bl.neutral_rows("mosei", labels).tolist() == [True, False, False, False, False]
    assert bl.neutral_rows("vader", labels).tolist() == [True, True, True, False, True]
    with pytest.raises(ValueError, match="no neutral rule"):
        bl.neutral_rows("sst5", labels)


def test_ridge_is_sklearns_and_the_selection_picks_the_strength() -> None:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(4)
    d = 40
    w = rng.normal(size=d)

    def data(n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, d)) + 0.5
        return x, 0.1 * (x @ w) + 0.3 + rng.normal(0, noise, n)

    # plenty of clean training data: the least shrinkage wins
    x, y = data(2000, 0.05)
    fit = bl.fit_ridge(x, y, [data(300, 0.05), data(100, 0.05)], alphas=(0.01, 300.0, 3000.0))
    assert fit.alpha == 0.01 and fit.at_edge
    reference = Ridge(alpha=fit.alpha).fit(x, y)
    assert np.allclose(fit.coef, reference.coef_, atol=1e-6) and fit.intercept == pytest.approx(reference.intercept_)
    assert fit.selection_mae[0.01] == min(fit.selection_mae.values())
    # barely more rows than features and heavy noise: shrinkage wins
    x, y = data(45, 3.0)
    fit = bl.fit_ridge(x, y, [data(300, 0.05)], alphas=(0.01, 30.0, 100.0))
    assert fit.alpha > 0.01
    x_new = rng.normal(size=(5, d)) * 100
    assert np.all(np.abs(fit.predict(x_new)) <= 3.0)  # clipped to the MOSI scale
    with pytest.raises(ValueError, match="selection"):
        bl.fit_ridge(x, y, [])


@pytest.mark.requires_train
def test_vader_maps_compound_to_the_mosi_scale() -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    texts = ["this movie was wonderful and i loved it", "the meeting starts at three", "i hated every minute"]
    scores = bl.vader_scores(texts)
    compound = [SentimentIntensityAnalyzer().polarity_scores(t)["compound"] for t in texts]
    assert scores == pytest.approx(3.0 * np.array(compound))
    assert scores[0] > 1.5 and scores[1] == 0.0 and scores[2] < -1.0


def test_vader_missing_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "vaderSentiment", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "vaderSentiment.vaderSentiment", None)
    with pytest.raises(bl.BaselineError, match="pip install -r requirements-train.txt"):
        bl.vader_scores(["fine"])
    # the command stops before any weights or encoder is loaded
    assert ev.main(["--baseline", "--weights", "no/such/weights"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "requirements-train.txt" in errors[0] and "\n" not in errors[0]


def _comparison() -> bl.PeerComparison:
    rng = np.random.default_rng(5)
    y = rng.normal(0, 1.5, 300)
    y[:30] = 0.0
    classes = rng.integers(0, 3, 200)
    sets = [bl.PeerSet("mosi", "MOSI test", y), bl.PeerSet("meld", "MELD test", classes, is_classes=True)]
    score_of_class = np.array([-2.0, 0.0, 2.0])
    predictions = {
        "MIAR x": {"mosi": y + rng.normal(0, 0.3, 300), "meld": score_of_class[classes]},
        "VADER": {"mosi": y + rng.normal(0, 1.5, 300), "meld": np.zeros(200)},
    }
    return bl.compare_peers(sets, predictions, "MIAR x", resamples=200)


def test_compare_peers_scores_every_model_on_the_same_rows() -> None:
    c = _comparison()
    assert c.models == ("MIAR x", "VADER")
    assert c.values[("meld", "polarity")]["MIAR x"] == 1.0  # polarity_of(-2, 0, 2) is the class itself
    assert c.sizes[("mosi", "acc2")] == 270 and c.sizes[("mosi", "r")] == 300  # Acc-2 non-0 drops label 0
    assert c.intervals[("mosi", "r")]["VADER"].excludes_zero
    assert set(c.values) >= {("mosi", "mae"), ("mosi", "neutral_recall"), ("mosi", "neutral_precision")}
    assert ("meld", "r") not in c.values
    with pytest.raises(ValueError, match="expected 300"):
        bl.compare_peers(c.sets, {"MIAR x": {"mosi": np.zeros(3), "meld": np.zeros(200)}}, "MIAR x")


def test_peer_tables_format() -> None:
    text = bl.format_peer_tables(_comparison())
    lines = text.splitlines()
    assert lines[0] == "| set | metric | n | MIAR x | VADER |"
    assert any(line.startswith("| MOSI test | Pearson r | 300 | 0.9") for line in lines)
    assert any(line.startswith("| MELD test | polarity acc (3-class) | 200 | 100.0 |") for line in lines)
    assert "paired bootstrap 95% interval (200 resamples, seed 0" in text
    assert "| set | metric | - VADER |" in text
    row = next(line for line in lines if line.startswith("| MOSI test | Pearson r | +"))
    assert row.endswith(" * |") and "[+" in row


def _held() -> dict:
    rows = [(str(i), f"sentence {i}", v) for i, v in enumerate([0.0, 0.0, 1.0, -2.0, 2.5, -0.5])]
    return {"mosi": (make_corpus("mosi", "test", rows), None), "mosei": (make_corpus("mosei", "valid", rows), None),
            "vader": (make_corpus("vader", "dev", [(str(i), f"text {i}", v) for i, v in
                                                   enumerate([0.2, -0.1, 1.0, -3.0])]), None)}


def test_text_set_scores_have_mosei_and_neutral_keys() -> None:
    held = _held()
    preds = {"mosi": np.array([0.1, 1.0, 1.2, -1.0, 2.0, 0.3]), "mosei": np.array([0.1, 1.0, 1.2, -1.0, 2.0, 0.3]),
             "vader": np.array([0.0, 0.0, 0.0, -2.0])}
    scores = ev.text_set_scores(held, preds)
    mosei_keys = {k for k, _, _ in ev.COLUMNS if k.startswith("mosei_")}
    assert mosei_keys == {"mosei_mae", "mosei_corr", "mosei_acc2_has0", "mosei_acc2_non0", "mosei_f1_non0",
                          "mosei_acc7"} and mosei_keys <= set(scores)
    assert scores["mosei_mae"] == scores["mosi_mae"]
    # MOSI: neutral rows 0, 1; inside the band 0 (0.1) and 5 (0.3) -> recall 1/2, precision 1/2
    assert scores["neutral_mosi_recall"] == pytest.approx(0.5)
    assert scores["neutral_mosi_precision"] == pytest.approx(0.5)
    # VADER: neutral rows 0, 1 (|label| <= 0.25); inside: 0, 1, 2 -> recall 1, precision 2/3
    assert scores["neutral_vader_recall"] == 1.0 and scores["neutral_vader_precision"] == pytest.approx(2 / 3)
    # pooled: 6 neutral rows (2 + 2 + 2), 4 found of 7 inside the band
    assert scores["neutral_n"] == 6 and scores["neutral_recall"] == pytest.approx(4 / 6)
    assert scores["neutral_precision"] == pytest.approx(4 / 7)
    assert {k for k, _, _ in ev.NEUTRAL_COLUMNS} <= set(scores)


def test_report_tables_format() -> None:
    runs = [{"mosi_mae": 0.8, "mosei_acc2_non0": 0.85, "neutral_recall": 0.6, "neutral_mosi_recall": 0.5},
            {"mosi_mae": 0.9, "mosei_acc2_non0": 0.86, "neutral_recall": 0.7, "neutral_mosi_recall": 0.5}]
    text = ev.format_report({"m": runs, "old": [{"mosi_mae": 0.7}]})
    table, neutral = text.split("\n\n")
    assert "| m (n=2) | 0.850±0.050 |" in table and "85.5±0.5" in table and "| MOSEI Acc2n0 |" in table
    header = neutral.splitlines()[1]
    assert header == ("| model | recall | precision | MOSI R | MOSI P | MOSEI R | MOSEI P | VADER R | VADER P |")
    assert "| m (n=2) | 65.0±5.0 | - | 50.0±0.0 | - |" in neutral
    assert "old" not in neutral  # rows without neutral figures are left out


def test_every_option_is_explained() -> None:
    parser = ev.build_parser()
    for action in parser._actions:
        assert action.help and len(action.help) > 10, action.option_strings
    assert "--baseline" in parser.format_help()


@requires_shared
def test_models_config_follows_the_weights() -> None:
    from model.checkpoint import read_weights_config
    from pipeline.config import PipelineConfig

    weights = PipelineConfig().weights_dir
    written = read_weights_config(weights)
    text = ev._models_config(weights).text
    assert (text.encoder, text.max_tokens) == (written["text_encoder"], written["max_tokens"])
    assert text.layers == written.get("text_layers")  # miar-v1 has none: every layer


@pytest.mark.slow
@requires_shared
def test_shipped_weights_on_mosi_have_every_key() -> None:
    from pipeline.config import PipelineConfig

    scores = ev.evaluate_weights(PipelineConfig().weights_dir, text_sets=("mosi",))
    assert 0.5 < scores["mosi_acc2_non0"] <= 1.0 and np.isfinite(scores["mosi_corr"])
    assert 0.0 <= scores["neutral_mosi_recall"] <= 1.0 and scores["neutral_n"] == scores["neutral_mosi_n"] > 0
    assert "mosei_mae" not in scores  # only the sets asked for


def test_crema_d_features_of_another_depth_are_not_scored(tmp_path, caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights that read the embeddings (text_layers 0) fed states after layer 2 would score nonsense
    without a word: such features are refused with a warning that names both depths."""
    import json

    from model.feature_store import FEATURES_FORMAT
    from pipeline.config import PipelineConfig
    from pipeline.models import Models
    from training import crema_d

    with Models.load(PipelineConfig(), parts=("miar",)) as models:
        miar = models.miar
    folder = ev.crema_d_folder(miar, tmp_path)
    assert folder == crema_d.features_dir(tmp_path, miar.text_layers, "second pass")  # the shipped weights read those
    other = ev.crema_d_folder(miar, tmp_path, "transcription pass")
    assert other == crema_d.features_dir(tmp_path, miar.text_layers, "transcription pass") != folder
    folder.mkdir()
    other = 3  # a depth no shipped weights read
    manifest = {"format": FEATURES_FORMAT, "text_encoder": miar.text_encoder, "samples": {"test": []}}
    (folder / "manifest.json").write_text(json.dumps({**manifest, "text_layers": other}))
    with caplog.at_level("WARNING", logger="training.evaluate"):
        assert ev.crema_d_scores(miar, tmp_path) == {}
    assert f"at depth {other}, the weights read {miar.text_encoder} at depth {miar.text_layers}" in caplog.text
    (folder / "manifest.json").write_text(json.dumps({**manifest, "text_layers": miar.text_layers}))

    class Read(Exception):
        pass

    def reached(*args: object) -> None:
        raise Read

    monkeypatch.setattr(ev, "load_split", reached)
    with pytest.raises(Read):  # the same depth: the features are read
        ev.crema_d_scores(miar, tmp_path)
