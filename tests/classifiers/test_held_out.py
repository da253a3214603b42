"""Held-out log-odds choose a few-shot head's threshold; repeated splits keep it from hanging on one fold split."""

import numpy as np
import pytest
import torch

from shieldkit.classifiers import TrainingConfig
from shieldkit.classifiers.evaluation import THRESHOLD_RULES, fit_platt
from shieldkit.classifiers.training import fit_logistic_head, held_out_log_odds


def _sixteen_examples():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(8), np.zeros(8)].astype(int)
    shift = np.zeros(16)
    shift[:4] = 0.6
    return rng.normal(size=(16, 16)) + np.outer(labels, shift), labels


def _threshold(x, y, config):
    held_out = held_out_log_odds(x, y, 1.0, config)
    calibration = fit_platt(held_out, y)
    return THRESHOLD_RULES["f1"](calibration.apply(torch.tensor(held_out)).numpy(), y)


def test_no_example_is_scored_by_a_head_that_saw_it():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    labels = rng.permutation(np.r_[np.ones(12), np.zeros(12)].astype(int))
    x = np.hstack([rng.normal(size=(24, 4)), 5.0 * np.eye(24)])  # noise plus one column only its own example has
    weight, bias = fit_logistic_head(x, labels, 10.0)
    assert roc_auc_score(labels, x @ weight + bias) == pytest.approx(1.0)  # in-sample: memorised by those columns
    for repeats in (1, 5):
        held_out = held_out_log_odds(x, labels, 10.0, TrainingConfig(seed=0, cv_repeats=repeats))
        assert roc_auc_score(labels, held_out) < 0.8


def test_repeats_make_the_threshold_depend_less_on_the_split():
    x, y = _sixteen_examples()
    spread = {repeats: np.std([_threshold(x, y, TrainingConfig(seed=seed, cv_repeats=repeats)) for seed in range(20)])
              for repeats in (1, 5)}
    assert spread[5] < 0.6 * spread[1]


def test_held_out_scores_are_reproducible():
    x, y = _sixteen_examples()
    first = held_out_log_odds(x, y, 1.0, TrainingConfig(seed=3))
    again = held_out_log_odds(x, y, 1.0, TrainingConfig(seed=3))
    np.testing.assert_allclose(first, again, rtol=1e-9, atol=1e-12)
