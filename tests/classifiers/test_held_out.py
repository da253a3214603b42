"""Held-out log-odds choose a few-shot head's threshold; repeated splits keep it from hanging on one fold split."""

from dataclasses import replace

import numpy as np
import pytest

from shieldkit.classifiers import TrainingConfig
from shieldkit.classifiers.training import fit_head, fit_logistic_head, fold_splits, held_out_log_odds
from shieldkit.errors import DataError


def _sixteen_examples():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(8), np.zeros(8)].astype(int)
    shift = np.zeros(16)
    shift[:4] = 0.6
    return rng.normal(size=(16, 16)) + np.outer(labels, shift), labels


def _threshold(x, y, config):
    return fit_head(x, y, replace(config, c=1.0)).threshold


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


def _out_of_fold(x, y, splits):
    scores = np.zeros(len(y))
    for train, test in splits:
        weight, bias = fit_logistic_head(x[train], y[train], 1.0)
        scores[test] = x[test] @ weight + bias
    return scores


def test_one_repeat_is_a_single_shuffled_stratified_split():
    from sklearn.model_selection import StratifiedKFold

    x, y = _sixteen_examples()
    single = _out_of_fold(x, y, StratifiedKFold(n_splits=3, shuffle=True, random_state=4).split(x, y))
    got = held_out_log_odds(x, y, 1.0, TrainingConfig(seed=4, cv_repeats=1))
    np.testing.assert_allclose(got, single, rtol=1e-9, atol=1e-9)


def test_repeats_average_the_scores_of_each_split():
    x, y = _sixteen_examples()
    splits = fold_splits(y, 3, 4, 2)
    per_split = [_out_of_fold(x, y, splits[3 * r:3 * r + 3]) for r in range(4)]
    got = held_out_log_odds(x, y, 1.0, TrainingConfig(seed=2, cv_repeats=4))
    np.testing.assert_allclose(got, np.mean(per_split, axis=0), rtol=1e-9, atol=1e-9)
    for r in range(4):  # each repeat tests every example once
        np.testing.assert_array_equal(np.sort(np.concatenate([test for _, test in splits[3 * r:3 * r + 3]])),
                                      np.arange(len(y)))


def test_fit_head_uses_the_repeats_and_refuses_too_few_examples_per_class():
    x, y = _sixteen_examples()
    one = fit_head(x, y, TrainingConfig(seed=0, c=1.0, cv_repeats=1))
    five = fit_head(x, y, TrainingConfig(seed=0, c=1.0, cv_repeats=5))
    np.testing.assert_allclose(one.weight, five.weight, rtol=1e-9, atol=1e-12)  # the final head is the same fit
    assert not np.allclose(one.held_out_p, five.held_out_p, atol=1e-6)
    with pytest.raises(DataError, match="few.csv: 3-fold cross-validation needs at least 3 examples of each class"):
        fit_head(x[:10], np.r_[np.ones(2), np.zeros(8)].astype(int), TrainingConfig(), source="few.csv")
