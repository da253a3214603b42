"""Few-shot custom policies: a new head on the shared safety model, from a handful of labelled examples.

The "agile classifier" idea: the safety model's pooled state already separates harmful from harmless text, so a
new policy needs only a linear readout of it, fitted in seconds from 16-100 examples.

1. Each example's pooled state is computed once (its first window of the safety model's ``max_tokens``).
2. The head is an L2-regularised, class-balanced logistic regression on standardised states, folded back into a
   raw-state weight vector; its strength ``C`` is chosen by an inner cross-validation on the examples alone.
3. ``cv_folds``-fold cross-validation gives held-out log-odds for every example: they fit Platt scaling and
   choose the threshold (``threshold_rule``). The final head is fitted the same way on all examples; since
   the head is a convex fit on fixed features, the folds' held-out scores describe it well (the per-policy LoRA
   this replaced did not: its threshold transferred badly to the final model).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from shieldkit.classifiers.config import C_GRID, TrainingConfig
from shieldkit.classifiers.data import LabeledData, from_pairs, load_examples
from shieldkit.classifiers.evaluation import THRESHOLD_RULES, binary_metrics, fit_platt
from shieldkit.classifiers.gemma import PolicyHead
from shieldkit.classifiers.safety import HeadCard, HeadClassifier, SafetyModel
from shieldkit.errors import ConfigError, DataError

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime


def train_classifier(
    data: LabeledData | str | Path | Sequence[tuple[str, object]],
    runtime: GemmaRuntime,
    *,
    policy: str,
    description: str = "",
    config: TrainingConfig | None = None,
    safety: SafetyModel | None = None,
) -> HeadClassifier:
    """Fit a head for ``policy`` on ``safety`` (default: the committed safety model of ``runtime``)."""
    from shieldkit.classifiers.registry import load_safety_model

    started = time.perf_counter()
    config = config or TrainingConfig()
    if not isinstance(policy, str) or not policy.strip():
        raise ConfigError("policy must be a non-empty name, e.g. 'spoilers'")
    data = _as_data(data)
    labels = np.asarray(data.labels)
    counts = {label: int((labels == label).sum()) for label in (0, 1)}
    if min(counts.values()) < config.cv_folds:
        raise DataError(
            f"{data.source}: {config.cv_folds}-fold cross-validation needs at least {config.cv_folds} examples of "
            f"each class; found {counts[1]} violating and {counts[0]} allowed"
        )
    safety = safety if safety is not None else load_safety_model(runtime)
    if safety.runtime is not runtime:
        raise ConfigError("the safety model runs on another runtime than the one given")
    features = first_window_states(safety, data.texts)
    c = config.c if config.c is not None else _choose_c(features, labels, config)
    held_out = np.zeros(len(labels))
    for train, test in _folds(labels, config.cv_folds, config.seed):
        weight, bias = fit_logistic_head(features[train], labels[train], c)
        held_out[test] = features[test] @ weight + bias
    weight, bias = fit_logistic_head(features, labels, c)
    calibration = fit_platt(held_out, labels)
    held_out_p = calibration.apply(torch.tensor(held_out)).numpy()
    threshold = THRESHOLD_RULES[config.threshold_rule](held_out_p, labels)
    head = PolicyHead(runtime.info.hidden_size)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(weight, dtype=torch.float32))
        head.bias.fill_(float(bias))
    card = HeadCard(
        policy=policy.strip(),
        description=description.strip(),
        threshold=threshold,
        calibration=calibration,
        safety_model=safety.card.fingerprint,
        metrics={"cross_validated": binary_metrics(labels, held_out_p, threshold), "c": c,
                 "seconds": round(time.perf_counter() - started, 2)},
        training=config.to_dict(),
        data={"sha256": data.fingerprint(), "n": len(data), "positives": data.positives,
              "source": Path(data.source).name, "duplicates_dropped": len(data.duplicates)},
    )
    return HeadClassifier(safety, card, head)


def first_window_states(safety: SafetyModel, texts: Sequence[str]) -> np.ndarray:
    """[N, D] pooled state of each text's first window."""
    pooled, _ = safety.pooled(texts, first_only=True)
    return pooled.double().numpy()


def fit_logistic_head(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """Class-balanced L2 logistic regression on standardised states -> (raw-state weight [D], bias)."""
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(0), x.std(0) + 1e-6
    fit = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit((x - mean) / std, y)
    weight = fit.coef_[0] / std
    return weight, float(fit.intercept_[0] - (fit.coef_[0] * mean / std).sum())


def _choose_c(x: np.ndarray, y: np.ndarray, config: TrainingConfig) -> float:
    """The C of C_GRID with the lowest inner cross-validated log-loss (ties: the strongest regularisation)."""
    losses = []
    for c in C_GRID:
        total = 0.0
        for train, test in _folds(y, config.cv_folds, config.seed + 1):
            weight, bias = fit_logistic_head(x[train], y[train], c)
            z = np.clip(x[test] @ weight + bias, -30, 30)
            total += float(np.sum(np.logaddexp(0, -z) * y[test] + np.logaddexp(0, z) * (1 - y[test])))
        losses.append(total)
    return float(C_GRID[int(np.argmin(np.round(losses, 9)))])


def _folds(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def _as_data(data) -> LabeledData:
    if isinstance(data, LabeledData):
        return data
    if isinstance(data, (str, Path)):
        return load_examples(data)
    return from_pairs(data)
