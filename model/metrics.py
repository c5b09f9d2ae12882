"""MOSI regression metrics exactly as MMSA reports them.

MMSA (``metricsTop.__eval_mosi_regression``): MAE and Pearson correlation on the raw
scores; Acc-2 and weighted F1 in two variants, "has-0" (label >= 0 is positive, every
sample kept) and "non-0" (samples whose label is exactly 0 dropped, > 0 vs < 0); Acc-7
on ``round(clip(x, -3, 3))`` of both prediction and label. Accuracies are fractions
here; the evaluation CLI prints them as percentages.

scikit-learn (weighted F1) is imported inside ``mosi_metrics``, so importing this module
costs NumPy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["MosiMetrics", "mosi_metrics"]


@dataclass(frozen=True)
class MosiMetrics:
    """The MOSI benchmark numbers of one prediction set.

    Attributes:
        mae: Mean absolute error on the [-3, 3] scale.
        corr: Pearson correlation (0.0 when either side is constant).
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


def mosi_metrics(pred: np.ndarray, label: np.ndarray) -> MosiMetrics:
    """MMSA's MOSI metrics of predictions against labels.

    Raises:
        ValueError: Shapes differ or there are no samples.
    """
    from sklearn.metrics import f1_score

    pred, label = np.asarray(pred, np.float64).ravel(), np.asarray(label, np.float64).ravel()
    if pred.shape != label.shape or len(pred) == 0:
        raise ValueError(f"mosi_metrics: pred {pred.shape} and label {label.shape} must be equal and non-empty")
    mae = float(np.mean(np.abs(pred - label)))
    corr = float(np.corrcoef(pred, label)[0, 1]) if pred.std() > 0 and label.std() > 0 else 0.0
    p_has0, l_has0 = pred >= 0, label >= 0
    nz = label != 0
    p_non0, l_non0 = pred[nz] > 0, label[nz] > 0
    acc7 = float(np.mean(np.round(np.clip(pred, -3, 3)) == np.round(np.clip(label, -3, 3))))
    return MosiMetrics(
        mae=mae,
        corr=corr,
        acc2_has0=float(np.mean(p_has0 == l_has0)),
        f1_has0=float(f1_score(l_has0, p_has0, average="weighted")),
        acc2_non0=float(np.mean(p_non0 == l_non0)) if nz.any() else float("nan"),
        f1_non0=float(f1_score(l_non0, p_non0, average="weighted")) if nz.any() else float("nan"),
        acc7=acc7,
        n=len(pred),
    )
