"""How cross-validated scores set a classifier's threshold."""

import numpy as np
import pytest

from shieldkit.classifiers import TrainingConfig
from shieldkit.classifiers.evaluation import THRESHOLD_RULES, best_f1_threshold, best_youden_threshold
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
    assert TrainingConfig().threshold_rule == "f1" and set(THRESHOLD_RULES) == {"youden", "f1"}
    with pytest.raises(ConfigError, match=r"TrainingConfig\.threshold_rule must be one of f1, youden, got 'auc'"):
        TrainingConfig(threshold_rule="auc")
