"""Every measure of predictions against labels, in one place: MMSA's MOSI metrics and their parts.

MMSA (``metricsTop.__eval_mosi_regression``): MAE and Pearson correlation on the raw
scores; Acc-2 and weighted F1 in two variants, "has-0" (label >= 0 is positive, every
sample kept) and "non-0" (samples whose label is exactly 0 dropped, > 0 vs < 0); Acc-7
on ``round(clip(x, -3, 3))`` of both prediction and label. Accuracies are fractions
here; the evaluation CLI prints them as percentages. Beside them: ``sign_accuracy`` (the
held-out voice and face sets), and the row-wise ``pearson_rows`` / ``accuracy_rows`` that
the paired bootstrap of ``training.baselines`` applies to a block of resamples at once.

Backed by the libraries that already define them: Pearson is ``scipy.stats.pearsonr``, MAE
``sklearn.metrics.mean_absolute_error``, weighted F1 ``sklearn.metrics.f1_score``. SciPy and
scikit-learn are imported inside the functions, so importing this module costs NumPy only.

NaN policy (one for every measure): a measure the data cannot define is NaN, never 0 and never
an exception. Pearson is NaN with fewer than two samples or when either side is constant; MAE
with no sample; an accuracy or F1 over no kept sample (Acc-2 / F1 non-0 when every label is 0,
``sign_accuracy`` when no label is clear, its balanced form when one sign is missing). Inputs of
different shapes are a caller's bug: ``ValueError``, as is an empty set for ``mosi_metrics`` (a
benchmark of nothing). Tested in ``tests/test_metrics.py``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["MosiMetrics", "mosi_metrics", "pearson", "pearson_rows", "mae", "accuracy_rows", "sign_accuracy",
           "roc_auc"]


@dataclass(frozen=True)
class MosiMetrics:
    """The MOSI benchmark numbers of one prediction set.

    Attributes:
        mae: Mean absolute error on the [-3, 3] scale.
        corr: Pearson correlation (NaN when either side is constant: the module's NaN policy).
        acc2_has0: Accuracy of (pred >= 0) vs (label >= 0) over all samples.
        f1_has0: Weighted F1 of the same.
        acc2_non0: Accuracy of (pred > 0) vs (label > 0) over samples with label != 0.
        f1_non0: Weighted F1 of the same.
        acc7: Accuracy of round(clip(., -3, 3)) classes.
        n: Number of samples.
    """

    mae: float
    corr: float
    acc2_has0: float
    f1_has0: float
    acc2_non0: float
    f1_non0: float
    acc7: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _pair(pred: np.ndarray, label: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both sides as float64 of one shape.

    Raises:
        ValueError: The shapes differ.
    """
    pred, label = np.asarray(pred, np.float64), np.asarray(label, np.float64)
    if pred.shape != label.shape:
        raise ValueError(f"{name}: pred {pred.shape} and label {label.shape} must have the same shape")
    return pred, label


def pearson_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis (one value per row of 2-D inputs; a 0-d array for 1-D ones).

    ``scipy.stats.pearsonr``; NaN where a row has fewer than two samples or either side is constant.

    Raises:
        ValueError: The shapes differ.
    """
    from scipy.stats import ConstantInputWarning, NearConstantInputWarning, pearsonr

    y, p = _pair(y, p, "pearson_rows")
    if y.shape[-1] < 2:
        return np.full(y.shape[:-1], np.nan)
    with warnings.catch_warnings():  # constant input: NaN is the answer, not a warning
        warnings.simplefilter("ignore", ConstantInputWarning)
        warnings.simplefilter("ignore", NearConstantInputWarning)
        return np.asarray(pearsonr(y, p, axis=-1).statistic, np.float64)


def pearson(pred: np.ndarray, label: np.ndarray) -> float:
    """Pearson correlation of two 1-D sets (``pearson_rows``'s NaN policy)."""
    pred, label = _pair(pred, label, "pearson")
    return float(pearson_rows(pred.ravel(), label.ravel()))


def mae(pred: np.ndarray, label: np.ndarray) -> float:
    """Mean absolute error (``sklearn.metrics.mean_absolute_error``); NaN with no sample.

    Raises:
        ValueError: The shapes differ, or an input is not finite (scikit-learn refuses NaN and inf).
    """
    from sklearn.metrics import mean_absolute_error

    pred, label = _pair(pred, label, "mae")
    if pred.size == 0:
        return float("nan")
    return float(mean_absolute_error(label.ravel(), pred.ravel()))


def accuracy_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Share of equal entries along the last axis (labels and guesses of any comparable kind).

    NaN where a row is empty.
    """
    y, p = np.asarray(y), np.asarray(p)
    if y.shape[-1] == 0:
        return np.full(y.shape[:-1], np.nan)
    return np.mean(y == p, axis=-1)


def sign_accuracy(pred: np.ndarray, label: np.ndarray, clear: float, balanced: bool = False) -> float:
    """Share of samples with |label| >= clear whose prediction has the label's sign.

    ``balanced``: the mean of the positive and the negative samples' accuracies, which a
    constant guess cannot push above 50% (EmoDB has four negative emotions for one positive).
    NaN when no label is clear, or (balanced) when one sign has no clear sample.

    Raises:
        ValueError: The shapes differ.
    """
    pred, label = _pair(pred, label, "sign_accuracy")
    keep = np.abs(label) >= clear
    if not keep.any():
        return float("nan")
    right, positive = (pred[keep] > 0) == (label[keep] > 0), label[keep] > 0
    if not balanced:
        return float(np.mean(right))
    return float(np.mean([right[positive].mean(), right[~positive].mean()])) if positive.any() and (~positive).any() \
        else float("nan")


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` separating ``positive`` (bool) from the rest
    (``sklearn.metrics.roc_auc_score``): the chance that a random positive scores above a
    random negative, whatever the threshold. NaN when one class has no sample.

    Raises:
        ValueError: The shapes differ.
    """
    score, positive = _pair(score, np.asarray(positive, dtype=np.float64), "roc_auc")
    if positive.min(initial=1.0) == positive.max(initial=0.0):
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive > 0.5, score))


def mosi_metrics(pred: np.ndarray, label: np.ndarray) -> MosiMetrics:
    """MMSA's MOSI metrics of predictions against labels.

    Raises:
        ValueError: Shapes differ or there are no samples.
    """
    from sklearn.metrics import f1_score

    pred, label = np.asarray(pred, np.float64).ravel(), np.asarray(label, np.float64).ravel()
    if pred.shape != label.shape or len(pred) == 0:
        raise ValueError(f"mosi_metrics: pred {pred.shape} and label {label.shape} must be equal and non-empty")
    p_has0, l_has0 = pred >= 0, label >= 0
    nz = label != 0
    p_non0, l_non0 = pred[nz] > 0, label[nz] > 0
    return MosiMetrics(
        mae=mae(pred, label),
        corr=pearson(pred, label),
        acc2_has0=float(accuracy_rows(l_has0, p_has0)),
        f1_has0=float(f1_score(l_has0, p_has0, average="weighted")),
        acc2_non0=float(accuracy_rows(l_non0, p_non0)),
        f1_non0=float(f1_score(l_non0, p_non0, average="weighted")) if nz.any() else float("nan"),
        acc7=float(accuracy_rows(np.round(np.clip(label, -3, 3)), np.round(np.clip(pred, -3, 3)))),
        n=len(pred),
    )
