"""Peers of MIAR on the same rows, and the statistics that say whether MIAR beats them.

Why this module: a held-out score alone cannot say whether MIAR's architecture and extra
training text earn their cost; a peer scored on exactly the same sentences can. Three peers
(``python -m training.evaluate --baseline`` wires them to the corpora and encoders):

- **VADER** (``vaderSentiment``, rule-based, no training): its ``compound`` score in [-1, 1]
  times 3, so that it lands on the MOSI scale like every other model. It reads the same
  normalised text the other models get (the pipeline's form), so it loses what punctuation
  and capitals would tell it.
- **Ridge on frozen sentence embeddings** (MiniLM-L6 all layers, all-mpnet-base-v2):
  the mean of the encoder's token features (sentence-transformers' mean pooling), a linear
  map fitted in closed form, the strength picked on selection sets (``fit_ridge``).

Comparisons are paired bootstrap intervals of "MIAR minus peer" (``paired_bootstrap``):
each resample draws the same rows for both models, so the interval measures the difference
on these sentences, not two independent noises. The neutral band's precision and recall
(``neutral_band``) say whether neutral statements land where the outputs call them neutral.

Everything here is a function over arrays (NumPy, and the measures of ``model.metrics``;
``vaderSentiment`` is imported when VADER is asked for), so the tests run it on synthetic data
in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from model.batch import SampleInput
from model.metrics import accuracy_rows, mae, pearson_rows
from model.schema import NEUTRAL_BAND, POLARITIES, SCORE_MAX, SCORE_MIN, polarity_of

__all__ = [
    "BaselineError", "RIDGE_ALPHAS", "VADER_SCALE", "VADER_NEUTRAL", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED",
    "vader_scores", "mean_pooled", "RidgeFit", "fit_ridge", "Interval", "paired_bootstrap", "NeutralBand",
    "neutral_band", "neutral_rows", "PeerSet", "PeerComparison", "METRICS",
    "compare_peers", "format_peer_tables",
]

#: Ridge strengths tried (the selection sets pick one). Wide on purpose: mean-pooled embeddings
#: of different encoders have different scales, and the pick is reported with a warning at an edge.
RIDGE_ALPHAS: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
#: VADER's compound score is in [-1, 1]; the MOSI scale is [-3, 3].
VADER_SCALE = 3.0
#: A VADER-rated sentence is neutral when |mean rating| on the MOSI scale is at most this: a quarter
#: of a MOSI step, i.e. |valence| <= 1/3 on VADER's own [-4, 4] scale (raters' means are noisy, so
#: exactly 0 is rare: 1 in 1,851 rows of the held-out slice; 141 are within 0.25).
VADER_NEUTRAL = 0.25
#: Paired bootstrap: resamples and seed (fixed, so every run prints the same interval).
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
#: Resamples drawn at once (bounds memory: block x rows floats per array).
_BLOCK = 100


class BaselineError(Exception):
    """A peer cannot be computed (e.g. its package is not installed); the message says what to do."""


def vader_scores(texts: Sequence[str]) -> np.ndarray:
    """VADER's compound score of each text, times ``VADER_SCALE`` (the MOSI scale).

    Raises:
        BaselineError: ``vaderSentiment`` is not installed.
    """
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError as e:
        raise BaselineError(f"the VADER peer needs vaderSentiment ({e}): pip install -r requirements-train.txt") from e
    analyzer = SentimentIntensityAnalyzer()
    return np.array([VADER_SCALE * analyzer.polarity_scores(t)["compound"] for t in texts], dtype=np.float64)


def mean_pooled(samples: Sequence[SampleInput]) -> np.ndarray:
    """(N, D) sentence embeddings as sentence-transformers' mean pooling makes them (special tokens included)."""
    return np.stack([np.asarray(s.text, np.float32)[s.text_mask].mean(axis=0) for s in samples])


@dataclass(frozen=True)
class RidgeFit:
    """A ridge regression fitted on sentence embeddings.

    Attributes:
        alpha: The strength the selection sets picked.
        coef: (D,) weights.
        intercept: Bias (the training labels' mean minus the centred fit's offset).
        selection_mae: Alpha -> mean over the selection sets of their MAE (clipped predictions).
    """

    alpha: float
    coef: np.ndarray
    intercept: float
    selection_mae: dict[float, float] = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scores of (N, D) embeddings, clipped to the MOSI scale as every model's output is."""
        return np.clip(np.asarray(x, np.float64) @ self.coef + self.intercept, SCORE_MIN, SCORE_MAX)

    @property
    def at_edge(self) -> bool:
        """The pick is the smallest or largest strength tried (a wider grid might do better)."""
        return bool(self.selection_mae) and self.alpha in (min(self.selection_mae), max(self.selection_mae))


def fit_ridge(
    x_train: np.ndarray, y_train: np.ndarray, selection: Sequence[tuple[np.ndarray, np.ndarray]],
    alphas: Sequence[float] = RIDGE_ALPHAS,
) -> RidgeFit:
    """Ridge regression with an intercept (scikit-learn's ``Ridge`` objective), strength picked on selection sets.

    Closed form through one eigendecomposition of the centred Gram matrix, so every strength
    costs one (D, D) product. The pick minimises the mean over ``selection`` of each set's MAE
    (clipped to the MOSI scale), so a small set (MOSI dev, 229 rows) weighs as much as a large
    one (MOSEI valid, 1,759) and neither benchmark dominates the choice.

    Args:
        x_train: (N, D) embeddings.
        y_train: (N,) labels on the MOSI scale.
        selection: ``(x, y)`` per selection set; none of them training rows.
        alphas: Strengths to try (> 0).

    Raises:
        ValueError: Shapes disagree, or no selection set or strength is given.
    """
    x = np.asarray(x_train, np.float64)
    y = np.asarray(y_train, np.float64).ravel()
    if x.ndim != 2 or len(x) != len(y) or len(y) == 0:
        raise ValueError(f"fit_ridge: x {x.shape} and y {y.shape} must be (N, D) and (N,), N > 0")
    if not selection or not alphas or min(alphas) <= 0:
        raise ValueError("fit_ridge: give at least one selection set and positive strengths")
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc = x - x_mean
    eigval, eigvec = np.linalg.eigh(xc.T @ xc)
    projected = eigvec.T @ (xc.T @ (y - y_mean))
    fits: dict[float, tuple[np.ndarray, float]] = {}
    maes: dict[float, float] = {}
    for alpha in alphas:
        coef = eigvec @ (projected / (np.maximum(eigval, 0.0) + alpha))
        intercept = float(y_mean - x_mean @ coef)
        fits[float(alpha)] = (coef, intercept)
        maes[float(alpha)] = float(np.mean([
            mae(np.clip(np.asarray(xs, np.float64) @ coef + intercept, SCORE_MIN, SCORE_MAX), ys)
            for xs, ys in selection]))
    best = min(maes, key=lambda a: (maes[a], a))
    return RidgeFit(best, fits[best][0], fits[best][1], maes)


@dataclass(frozen=True)
class Interval:
    """A paired bootstrap estimate of "model A minus model B".

    Attributes:
        diff: The difference on all rows.
        low: Lower end of the interval (percentile bootstrap).
        high: Upper end.
    """

    diff: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        """The interval lies wholly on one side of 0: the difference is significant at its level."""
        return self.low > 0 or self.high < 0


Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]


def paired_bootstrap(
    statistic: Statistic, y: np.ndarray, a: np.ndarray, b: np.ndarray,
    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED, level: float = 0.95,
) -> Interval:
    """Percentile interval of ``statistic(y, a) - statistic(y, b)`` over paired resamples of the rows.

    Each resample draws row indices with replacement once and applies them to the labels and
    both models' predictions, so what one model gains on a hard resample the other sees too.
    The seed fixes the draws: the same rows and seed give the same interval, and every peer
    compared on one set is resampled identically.

    Args:
        statistic: ``(y, p) -> value`` along the last axis (``model.metrics.pearson_rows``, ``accuracy_rows``).
        y: (N,) labels (or targets of the statistic).
        a: (N,) predictions of model A.
        b: (N,) predictions of model B.
        resamples: Bootstrap resamples.
        seed: Seed of the draws.
        level: Coverage of the interval.

    Raises:
        ValueError: Lengths differ or there are fewer than 2 rows.
    """
    y, a, b = np.asarray(y), np.asarray(a), np.asarray(b)
    if not len(y) == len(a) == len(b) or len(y) < 2:
        raise ValueError(f"paired_bootstrap: y, a, b must be equally long (>= 2 rows): {len(y)}, {len(a)}, {len(b)}")
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, resamples, _BLOCK):
        idx = rng.integers(0, len(y), size=(min(_BLOCK, resamples - start), len(y)))
        diffs.append(statistic(y[idx], a[idx]) - statistic(y[idx], b[idx]))
    d = np.concatenate(diffs)
    tail = (1.0 - level) / 2.0
    low, high = (np.nanquantile(d, [tail, 1.0 - tail]) if np.isfinite(d).any() else (np.nan, np.nan))
    return Interval(float(statistic(y, a) - statistic(y, b)), float(low), float(high))


@dataclass(frozen=True)
class NeutralBand:
    """How the neutral band (``|score| < NEUTRAL_BAND``) matches neutral-rated rows.

    Attributes:
        precision: Of the rows predicted neutral, the share rated neutral (NaN when none predicted).
        recall: Of the rows rated neutral, the share predicted neutral (NaN when none rated).
        n_neutral: Rows rated neutral.
        n_predicted: Rows predicted neutral.
    """

    precision: float
    recall: float
    n_neutral: int
    n_predicted: int


def neutral_band(pred: np.ndarray, neutral: np.ndarray, band: float = NEUTRAL_BAND) -> NeutralBand:
    """Precision and recall of "predicted inside the band" against "rated neutral".

    "Inside" is the outputs' own rule (``model.schema.sentiment_bin``): ``-band < score < band``.
    """
    pred = np.asarray(pred, np.float64)
    neutral = np.asarray(neutral, bool)
    inside = np.abs(pred) < band
    hits = int(np.sum(inside & neutral))
    n_pred, n_neutral = int(inside.sum()), int(neutral.sum())
    return NeutralBand(hits / n_pred if n_pred else float("nan"), hits / n_neutral if n_neutral else float("nan"),
                       n_neutral, n_pred)


def neutral_rows(name: str, labels: np.ndarray) -> np.ndarray:
    """Rows rated neutral in a held-out set: MOSI and MOSEI label exactly 0 (the annotators' mean);
    VADER |label| <= ``VADER_NEUTRAL`` (its means of ten ratings are rarely exactly 0).

    Raises:
        ValueError: ``name`` has no neutral rule here.
    """
    labels = np.asarray(labels, np.float64)
    if name in ("mosi", "mosei"):
        return labels == 0.0
    if name == "vader":
        return np.abs(labels) <= VADER_NEUTRAL + 1e-6  # float32 labels: 0.25 may be stored a hair above
    raise ValueError(f"neutral_rows: no neutral rule for {name!r} (mosi, mosei, vader)")


@dataclass(frozen=True)
class PeerSet:
    """One held-out set the peers are compared on.

    Attributes:
        name: Short name ("mosi", "mosei", "vader", "sst5", "meld").
        title: What the tables print ("MOSI test").
        labels: (N,) MOSI-scale labels; for a class set, the class ids (``POLARITIES`` order).
        is_classes: ``labels`` are 3-class polarity ids (MELD): compared by polarity accuracy, not r.
    """

    name: str
    title: str
    labels: np.ndarray
    is_classes: bool = False


@dataclass(frozen=True)
class PeerComparison:
    """Every figure of ``compare_peers``.

    Attributes:
        reference: The model the others are compared to ("MIAR ...").
        models: Model names in table order (the reference first).
        values: ``(set name, metric) -> {model: value}``.
        intervals: ``(set name, metric) -> {peer: Interval of reference minus peer}``.
        sets: The sets, in order.
        sizes: ``(set name, metric) -> rows the metric is computed on``.
        resamples: Bootstrap resamples of every interval.
        seed: Their seed.
    """

    reference: str
    models: tuple[str, ...]
    values: dict[tuple[str, str], dict[str, float]]
    intervals: dict[tuple[str, str], dict[str, Interval]]
    sets: tuple[PeerSet, ...]
    sizes: dict[tuple[str, str], int]
    resamples: int = BOOTSTRAP_RESAMPLES
    seed: int = BOOTSTRAP_SEED


#: Metric name -> (printed label, percent?). "r" and "acc2" / "polarity" are bootstrapped; the rest are points.
METRICS: dict[str, tuple[str, bool]] = {
    "r": ("Pearson r", False), "acc2": ("Acc-2 non-0", True), "polarity": ("polarity acc (3-class)", True),
    "mae": ("MAE", False), "neutral_recall": ("neutral recall", True), "neutral_precision": ("neutral precision", True),
}


def _polarity_ids(scores: np.ndarray) -> np.ndarray:
    return np.array([POLARITIES.index(polarity_of(float(s))) for s in scores], dtype=np.int64)


def compare_peers(
    sets: Sequence[PeerSet], predictions: Mapping[str, Mapping[str, np.ndarray]], reference: str,
    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
) -> PeerComparison:
    """Scores of every model on every set, and paired intervals of the reference minus each peer.

    Per regression set: Pearson r and Acc-2 non-0 (label != 0 rows, sign of score vs label),
    both bootstrapped, plus MAE and, where ``neutral_rows`` has a rule, the neutral band's
    recall and precision. Per class set (MELD): polarity accuracy of ``polarity_of(score)``
    for every model alike (MIAR's class head is not used here, so the peers are comparable).

    Args:
        sets: Held-out sets.
        predictions: ``model -> set name -> (N,) scores`` on the MOSI scale, every model on every set.
        reference: The model compared to the others (a key of ``predictions``).

    Raises:
        ValueError: A model lacks a set, or its predictions have the wrong length.
    """
    if reference not in predictions:
        raise ValueError(f"compare_peers: reference {reference!r} has no predictions")
    models = (reference, *[m for m in predictions if m != reference])
    values: dict[tuple[str, str], dict[str, float]] = {}
    intervals: dict[tuple[str, str], dict[str, Interval]] = {}
    sizes: dict[tuple[str, str], int] = {}
    for s in sets:
        preds = {}
        for m in models:
            p = predictions[m].get(s.name)
            if p is None or len(p) != len(s.labels):
                raise ValueError(f"compare_peers: {m} has {None if p is None else len(p)} predictions for "
                                 f"{s.title}, expected {len(s.labels)}")
            preds[m] = np.asarray(p, np.float64)
        if s.is_classes:
            guesses = {m: _polarity_ids(p) for m, p in preds.items()}
            bootstrapped = {"polarity": (accuracy_rows, s.labels, guesses)}
        else:
            y = np.asarray(s.labels, np.float64)
            nz = y != 0
            bootstrapped = {"r": (pearson_rows, y, preds),
                            "acc2": (accuracy_rows, y[nz] > 0, {m: p[nz] > 0 for m, p in preds.items()})}
        for metric, (stat, target, model_preds) in bootstrapped.items():
            values[(s.name, metric)] = {m: float(stat(target, model_preds[m])) for m in models}
            intervals[(s.name, metric)] = {
                m: paired_bootstrap(stat, target, model_preds[reference], model_preds[m], resamples, seed)
                for m in models[1:]}
            sizes[(s.name, metric)] = len(target)
        if not s.is_classes:
            y = np.asarray(s.labels, np.float64)
            values[(s.name, "mae")] = {m: mae(p, y) for m, p in preds.items()}
            sizes[(s.name, "mae")] = len(y)
            try:
                neutral = neutral_rows(s.name, y)
            except ValueError:
                continue
            bands = {m: neutral_band(p, neutral) for m, p in preds.items()}
            values[(s.name, "neutral_recall")] = {m: b.recall for m, b in bands.items()}
            values[(s.name, "neutral_precision")] = {m: b.precision for m, b in bands.items()}
            sizes[(s.name, "neutral_recall")] = int(neutral.sum())
            sizes[(s.name, "neutral_precision")] = int(neutral.sum())
    return PeerComparison(reference, models, values, intervals, tuple(sets), sizes, resamples, seed)


def _value(v: float, percent: bool) -> str:
    if not np.isfinite(v):
        return "-"
    return f"{100 * v:.1f}" if percent else f"{v:.3f}"


def _interval(i: Interval, percent: bool) -> str:
    if not np.isfinite(i.diff):
        return "-"
    scale, fmt = (100.0, "{:+.1f}") if percent else (1.0, "{:+.3f}")
    mark = " *" if i.excludes_zero else ""
    return (f"{fmt.format(scale * i.diff)} [{fmt.format(scale * i.low)}, {fmt.format(scale * i.high)}]{mark}")


def format_peer_tables(comparison: PeerComparison) -> str:
    """Two Markdown tables: every model's value per set and metric, then the reference minus each peer
    with its paired bootstrap interval (``*``: the interval excludes 0). Accuracies in percent."""
    c = comparison
    lines = ["| set | metric | n | " + " | ".join(c.models) + " |", "|" + "---|" * (len(c.models) + 3)]
    for s in c.sets:
        for metric, (label, percent) in METRICS.items():
            if (s.name, metric) in c.values:
                cells = [_value(c.values[(s.name, metric)][m], percent) for m in c.models]
                lines.append(f"| {s.title} | {label} | {c.sizes[(s.name, metric)]} | " + " | ".join(cells) + " |")
    peers = c.models[1:]
    lines += ["", f"{c.reference} minus each peer: paired bootstrap 95% interval "
              f"({c.resamples} resamples, seed {c.seed}; * = excludes 0; accuracies in points)",
              "| set | metric | " + " | ".join(f"- {p}" for p in peers) + " |", "|" + "---|" * (len(peers) + 2)]
    for s in c.sets:
        for metric, (label, percent) in METRICS.items():
            if (s.name, metric) in c.intervals:
                cells = [_interval(c.intervals[(s.name, metric)][p], percent) for p in peers]
                lines.append(f"| {s.title} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
