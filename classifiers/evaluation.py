"""Metrics, threshold choice, calibration fitting and the PR/calibration plot."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shieldkit.classifiers.gemma import Calibration


def fit_platt(z: Sequence[float], labels: Sequence[int]) -> Calibration:
    """Platt scaling: p = sigmoid(slope * z + intercept) fitted by (lightly regularised) logistic regression.

    A slope <= 0 would reverse the classifier; it is clamped to a small positive value, which makes scores
    nearly constant (the honest answer for a classifier that did not separate its held-out folds).
    """
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(z, dtype=np.float64).reshape(-1, 1)
    fit = LogisticRegression(C=100.0, max_iter=1000).fit(x, np.asarray(labels))
    slope = float(fit.coef_[0, 0])
    return Calibration(slope=max(slope, 1e-3), intercept=float(fit.intercept_[0]))


def _best_cut(probabilities: Sequence[float], labels: Sequence[int], objective) -> float:
    """The threshold maximising ``objective(true_pos, false_pos, positives, negatives)`` over the cuts after each
    score (descending; the first, i.e. strictest, on ties): midway between the last flagged and first passed score."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels)
    order = np.argsort(-p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    true_pos, false_pos = np.cumsum(y_sorted), np.cumsum(1 - y_sorted)
    value = objective(true_pos, false_pos, int(y.sum()), int(len(y) - y.sum()))
    distinct = np.r_[p_sorted[1:] < p_sorted[:-1], True]  # only cut between different scores
    best = int(np.argmax(np.where(distinct, value, -np.inf)))
    if best + 1 < len(p_sorted):
        return float((p_sorted[best] + p_sorted[best + 1]) / 2)
    return float(p_sorted[best] / 2)


def best_f1_threshold(probabilities: Sequence[float], labels: Sequence[int]) -> float:
    """The threshold that maximises F1 on these scores."""
    return _best_cut(probabilities, labels, lambda tp, fp, pos, neg: 2 * tp / (tp + fp + pos))


def best_youden_threshold(probabilities: Sequence[float], labels: Sequence[int]) -> float:
    """The threshold that maximises Youden's J = TPR - FPR on these scores. Unlike F1 it never favours flagging
    everything: on balanced few-shot data "all violating" already scores F1 = 2/3, and a noisy fold then picks a
    near-zero threshold."""
    return _best_cut(probabilities, labels,  # rounded so that exact ties stay ties despite float noise
                     lambda tp, fp, pos, neg: np.round(tp / max(1, pos) - fp / max(1, neg), 12))


def smooth_f1_threshold(probabilities: Sequence[float], labels: Sequence[int]) -> float:
    """The threshold that maximises F1 under a smooth model of these scores: each class's log-odds a normal
    distribution with the class's own mean and one pooled spread (as in linear discriminant analysis), at these
    scores' class prior. With a handful of examples the empirical F1-best cut sits on one or two scores and moves
    with them; the model's cut moves with the class means. Opt-in: on ETHOS's pool it never transferred badly from
    10 examples (no sample below F1 0.5 of 40, against 3 for "f1"), but its mean F1 was lower from 16 and from
    24:8 and 50:150 samples (BENCHMARKS.md, "Few-shot threshold")."""
    from scipy.stats import norm

    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-6, 1 - 1e-6)
    y = np.asarray(labels).astype(bool)
    z = np.log(p / (1 - p))
    pos, neg = z[y], z[~y]
    spread = math.sqrt((((pos - pos.mean()) ** 2).sum() + ((neg - neg.mean()) ** 2).sum()) / max(1, len(z) - 2))
    spread = max(spread, 0.05)
    prior = y.mean()
    cuts = np.linspace(z.min() - spread, z.max() + spread, 2001)
    tpr, fpr = norm.sf(cuts, pos.mean(), spread), norm.sf(cuts, neg.mean(), spread)
    f1 = 2 * prior * tpr / (prior * tpr + (1 - prior) * fpr + prior)
    best = cuts[int(np.argmax(f1))]
    return float(1 / (1 + math.exp(-best)))


# How a classifier's threshold is chosen from its cross-validated probabilities (TrainingConfig.threshold_rule).
THRESHOLD_RULES = {"f1": best_f1_threshold, "youden": best_youden_threshold, "f1-smooth": smooth_f1_threshold}


def binary_metrics(labels: Sequence[int], probabilities: Sequence[float], threshold: float) -> dict[str, Any]:
    """precision, recall, f1, accuracy, roc_auc, pr_auc, brier, ece, confusion counts, n, threshold."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(labels, dtype=int)
    p = np.asarray(probabilities, dtype=np.float64)
    flagged = p >= threshold
    tp = int(np.sum(flagged & (y == 1)))
    fp = int(np.sum(flagged & (y == 0)))
    fn = int(np.sum(~flagged & (y == 1)))
    tn = int(np.sum(~flagged & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both = 0 < y.sum() < len(y)
    return {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "threshold": float(threshold),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / len(y) if len(y) else 0.0,
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "brier": float(np.mean((p - y) ** 2)) if len(y) else None,
        "ece": expected_calibration_error(y, p),
        "false_positive_rate": fp / (fp + tn) if fp + tn else None,
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def expected_calibration_error(labels: Sequence[int], probabilities: Sequence[float], bins: int = 10) -> float | None:
    """Mean |observed rate - mean predicted probability| over equal-width bins, weighted by bin size."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if not len(y):
        return None
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        chosen = index == b
        if chosen.any():
            total += chosen.sum() * abs(y[chosen].mean() - p[chosen].mean())
    return float(total / len(y))


def format_report(metrics: dict[str, Any], title: str) -> str:
    """A small human-readable report: the headline metrics and the confusion matrix."""

    def show(value: Any) -> str:
        return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"

    c = metrics["confusion"]
    lines = [
        title,
        f"  examples   {metrics['n']} ({metrics['positives']} violating)",
        f"  threshold  {metrics['threshold']:.3f}",
        f"  precision  {show(metrics['precision'])}   recall {show(metrics['recall'])}   F1 {show(metrics['f1'])}   "
        f"false-positive rate {show(metrics['false_positive_rate'])}",
        f"  ROC-AUC    {show(metrics['roc_auc'])}   PR-AUC {show(metrics['pr_auc'])}   "
        f"Brier {show(metrics['brier'])}   ECE {show(metrics['ece'])}",
        "  confusion           predicted allowed   predicted violates",
        f"    actual allowed    {c['tn']:>17}   {c['fp']:>18}",
        f"    actual violates   {c['fn']:>17}   {c['tp']:>18}",
    ]
    return "\n".join(lines)


PLOT_SUFFIXES = (".png", ".svg", ".pdf")  # what plot_curves writes


def plot_curves(labels: Sequence[int], probabilities: Sequence[float], threshold: float, path: str | Path, title: str) -> Path:
    """PR curve (with the operating point) and a reliability diagram, side by side, as PNG, SVG or PDF
    (``PLOT_SUFFIXES``, by the file name)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(labels, dtype=int)
    p = np.asarray(probabilities, dtype=np.float64)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    point = binary_metrics(y, p, threshold)
    if point["positives"]:  # with no violating text there is no recall to plot, only the operating point's rates
        precision, recall, _ = precision_recall_curve(y, p)
        left.plot(recall, precision, color="tab:blue")
    left.scatter([point["recall"]], [point["precision"]], color="tab:red", zorder=3, label=f"threshold {threshold:.2f}")
    left.axhline(y.mean(), color="grey", linestyle=":", label=f"base rate {y.mean():.2f}")
    left.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="precision-recall")
    left.legend(loc="lower left")
    edges = np.linspace(0, 1, 11)
    index = np.minimum((p * 10).astype(int), 9)
    centres, rates, counts = [], [], []
    for b in range(10):
        chosen = index == b
        if chosen.any():
            centres.append(p[chosen].mean())
            rates.append(y[chosen].mean())
            counts.append(int(chosen.sum()))
    right.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    right.plot(centres, rates, marker="o", color="tab:green", label="observed")
    right.bar(edges[:-1] + 0.05, np.asarray(np.histogram(p, bins=edges)[0]) / max(1, len(p)), width=0.09, alpha=0.2,
              color="tab:green", label="share of texts")
    right.set(xlabel="predicted probability", ylabel="observed violation rate", xlim=(0, 1), ylim=(0, 1.02),
              title=f"calibration (ECE {point['ece']:.3f})")
    right.legend(loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
