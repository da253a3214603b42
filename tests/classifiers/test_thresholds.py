"""How cross-validated scores set a classifier's threshold."""

import numpy as np
import pytest

from shieldkit.classifiers import TrainingConfig
from shieldkit.classifiers.config import THRESHOLD_RULE_NAMES
from shieldkit.classifiers.evaluation import THRESHOLD_RULES, best_f1_threshold, best_youden_threshold, smooth_f1_threshold
from shieldkit.errors import ConfigError


def test_youden_cuts_where_true_minus_false_positive_rate_peaks():
    scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]
    labels = [1, 1, 0, 1, 0, 0, 1, 0]
    assert best_youden_threshold(scores, labels) == pytest.approx(0.75)  # ties: the stricter cut
    assert best_f1_threshold(scores, labels) == pytest.approx(0.5)


def test_youden_does_not_flag_everything_when_scores_barely_separate():
    """On balanced data "flag all" already has F1 2/3; F1 then drifts to the lowest cut, Youden's J does not."""
    rng = np.random.default_rng(0)
    labels = np.array([1, 0] * 30)
    scores = 0.4 + 0.05 * labels + rng.normal(0, 0.1, len(labels))  # weakly informative
    youden = best_youden_threshold(scores, labels)
    flagged_share = np.mean(scores >= youden)
    assert 0.1 < flagged_share < 0.9
    assert np.mean(scores >= best_f1_threshold(scores, labels)) > flagged_share


def test_the_rule_is_a_config_field():
    assert TrainingConfig().threshold_rule == "f1" and set(THRESHOLD_RULES) == set(THRESHOLD_RULE_NAMES)
    assert set(THRESHOLD_RULE_NAMES) == {"youden", "f1", "f1-smooth"}
    with pytest.raises(ConfigError, match=r"TrainingConfig\.threshold_rule must be one of f1, youden, f1-smooth, got 'auc'"):
        TrainingConfig(threshold_rule="auc")


def test_the_smooth_rule_follows_the_class_means_not_single_scores():
    """Normal log-odds per class with one spread: the F1-best cut of the model lies between the class means, and
    moving one score to the other end moves it by a fraction of the spread."""
    rng = np.random.default_rng(1)
    z = np.r_[rng.normal(1.0, 1.0, 8), rng.normal(-1.0, 1.0, 8)]
    labels = np.r_[np.ones(8), np.zeros(8)].astype(int)
    p = 1 / (1 + np.exp(-z))
    cut = smooth_f1_threshold(p, labels)
    assert z[8:].mean() < np.log(cut / (1 - cut)) < z[:8].mean()
    z_moved = z.copy()
    z_moved[np.argmin(z[:8])] = 3.0  # the lowest positive becomes the highest
    assert smooth_f1_threshold(1 / (1 + np.exp(-z_moved)), labels) == pytest.approx(cut, abs=0.15)
    assert 0.0 < smooth_f1_threshold([0.9, 0.9, 0.1, 0.1], [1, 1, 0, 0]) < 1.0  # separated scores: a finite cut
