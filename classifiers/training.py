"""Few-shot custom policies: a new head on the shared safety model, from a handful of labelled examples.

The "agile classifier" idea: the safety model's pooled state already separates harmful from harmless text, so a
new policy needs only a linear readout of it, fitted in seconds from 16-100 examples.

1. Each example's pooled state is computed once (its first window of the safety model's ``max_tokens``).
2. The head is an L2-regularised, class-balanced logistic regression on standardised states, folded back into a
   raw-state weight vector; its strength ``C`` is chosen by an inner cross-validation on the examples alone.
3. ``cv_folds``-fold cross-validation, repeated ``cv_repeats`` times with fresh splits, gives each example the
   mean of its held-out log-odds: they fit Platt scaling and choose the threshold (``threshold_rule``). The
   final head is fitted the same way on all examples; since the head is a convex fit on fixed features, the
   folds' held-out scores describe it well (the per-policy LoRA this replaced did not). With 16 examples the
   threshold of a single split moves with which examples share a fold; the repeats average part of that out
   (``fold_splits``; measured in BENCHMARKS.md, "Few-shot threshold").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from shieldkit.classifiers.config import C_GRID, TrainingConfig
from shieldkit.classifiers.data import LabeledData, from_pairs, load_examples
from shieldkit.classifiers.evaluation import THRESHOLD_RULES, binary_metrics, fit_platt
from shieldkit.classifiers.gemma import Calibration, PolicyHead
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
    check_class_counts(labels, config, data.source)
    safety = safety if safety is not None else load_safety_model(runtime)
    if safety.runtime is not runtime:
        raise ConfigError("the safety model runs on another runtime than the one given")
    fit = fit_head(first_window_states(safety, data.texts), labels, config, source=data.source)
    head = PolicyHead(runtime.info.hidden_size)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(fit.weight, dtype=torch.float32))
        head.bias.fill_(fit.bias)
    card = HeadCard(
        policy=policy.strip(),
        description=description.strip(),
        threshold=fit.threshold,
        calibration=fit.calibration,
        safety_model=safety.card.fingerprint,
        metrics={"cross_validated": binary_metrics(labels, fit.held_out_p, fit.threshold), "c": fit.c,
                 "seconds": round(time.perf_counter() - started, 2)},
        training=config.to_dict(),
        data={"sha256": data.fingerprint(), "n": len(data), "positives": data.positives,
              "source": Path(data.source).name, "duplicates_dropped": len(data.duplicates)},
    )
    return HeadClassifier(safety, card, head)


@dataclass(frozen=True)
class HeadFit:
    """A head fitted on fixed states: raw-state weight [D] and bias, and how its scores are read."""

    weight: np.ndarray
    bias: float
    c: float  # chosen from C_GRID unless config.c was given
    calibration: Calibration  # Platt scaling fitted on the held-out log-odds
    threshold: float  # on calibrated probabilities, by config.threshold_rule
    held_out_p: np.ndarray  # [N] calibrated held-out probability of each example

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """[N] calibrated probabilities of states x [N, D]."""
        return self.calibration.apply(torch.tensor(x @ self.weight + self.bias)).numpy()


def fit_head(features: np.ndarray, labels: np.ndarray, config: TrainingConfig, *, source: str = "examples") -> HeadFit:
    """Steps 2-3 of the module docstring on states [N, D] with labels [N] (``source`` names them in errors)."""
    check_class_counts(labels, config, source)
    c = config.c if config.c is not None else _choose_c(features, labels, config)
    held_out = held_out_log_odds(features, labels, c, config)
    weight, bias = fit_logistic_head(features, labels, c)
    calibration = fit_platt(held_out, labels)
    held_out_p = calibration.apply(torch.tensor(held_out)).numpy()
    threshold = THRESHOLD_RULES[config.threshold_rule](held_out_p, labels)
    return HeadFit(weight, bias, c, calibration, float(threshold), held_out_p)


def check_class_counts(labels: np.ndarray, config: TrainingConfig, source: str) -> None:
    """DataError unless each class has at least ``config.cv_folds`` examples."""
    counts = {label: int((np.asarray(labels) == label).sum()) for label in (0, 1)}
    if min(counts.values()) < config.cv_folds:
        raise DataError(
            f"{source}: {config.cv_folds}-fold cross-validation needs at least {config.cv_folds} examples of "
            f"each class; found {counts[1]} violating and {counts[0]} allowed"
        )


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


def held_out_log_odds(x: np.ndarray, y: np.ndarray, c: float, config: TrainingConfig) -> np.ndarray:
    """[N] each example's log-odds from the heads that did not see it, averaged over ``config.cv_repeats`` splits."""
    total = np.zeros(len(y))
    for train, test in fold_splits(y, config.cv_folds, config.cv_repeats, config.seed):
        weight, bias = fit_logistic_head(x[train], y[train], c)
        total[test] += x[test] @ weight + bias
    return total / config.cv_repeats


def fold_splits(labels: np.ndarray, folds: int, repeats: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs: ``repeats`` stratified ``folds``-fold splits, each example tested once per repeat
    (sklearn's ``RepeatedStratifiedKFold``; its first repeat is ``StratifiedKFold(shuffle=True, random_state=seed)``)."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels))


def _choose_c(x: np.ndarray, y: np.ndarray, config: TrainingConfig) -> float:
    """The C of C_GRID with the lowest inner cross-validated log-loss (ties: the strongest regularisation)."""
    losses = []
    for c in C_GRID:
        total = 0.0
        for train, test in fold_splits(y, config.cv_folds, 1, config.seed + 1):
            weight, bias = fit_logistic_head(x[train], y[train], c)
            z = np.clip(x[test] @ weight + bias, -30, 30)
            total += float(np.sum(np.logaddexp(0, -z) * y[test] + np.logaddexp(0, z) * (1 - y[test])))
        losses.append(total)
    return float(C_GRID[int(np.argmin(np.round(losses, 9)))])


def _as_data(data) -> LabeledData:
    if isinstance(data, LabeledData):
        return data
    if isinstance(data, (str, Path)):
        return load_examples(data)
    return from_pairs(data)
