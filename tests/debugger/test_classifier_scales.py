"""The classifier target explains the number the UI shows beside it: the classifier's calibrated probability."""

import math

import pytest
import torch

import shieldkit_test_toy_classifier as toy  # registered by conftest.py
from shieldkit.classifiers.base import decide
from shieldkit.debugger import ClassifierTarget, explain
from shieldkit.errors import ConfigError

QUIET = {"progress": lambda done, total: None}
TEXT = "I'm going to destroy you at chess tomorrow."


class PlattToy(toy.ToyClassifier):
    """Reports sigmoid(2·z − 1) of its raw log-odds z, as a Platt-calibrated head does."""

    def calibrated(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(2.0 * z.float() - 1.0)

    def score(self, texts):
        raw = [float(torch.logit(torch.tensor(p, dtype=torch.float64))) for p in super().score(texts)]
        return [float(self.calibrated(torch.tensor([z]))[0]) for z in raw]


class OddToy(PlattToy):
    def calibrated(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z.float() ** 3)


@pytest.mark.parametrize("make", [toy.ToyClassifier, PlattToy], ids=["uncalibrated", "platt"])
def test_explained_values_match_the_reported_probability(tiny_runtime, make):
    classifier = make(tiny_runtime)
    reported = decide(classifier, [TEXT])[0].score
    probability = explain(ClassifierTarget(classifier, TEXT, "probability"), "gradient_x_input", **QUIET)
    log_odds = explain(ClassifierTarget(classifier, TEXT, "log_odds"), "gradient_x_input", **QUIET)
    assert probability.target_value == pytest.approx(reported, abs=1e-4)
    assert 1 / (1 + math.exp(-log_odds.target_value)) == pytest.approx(reported, abs=1e-4)
    assert "calibrated" in probability.target_description and "calibrated" in log_odds.target_description


def test_calibrated_log_odds_scale_the_raw_attributions(tiny_runtime):
    classifier = PlattToy(tiny_runtime)
    raw = explain(ClassifierTarget(classifier, TEXT, "raw_log_odds"), "gradient_x_input", **QUIET)
    calibrated = explain(ClassifierTarget(classifier, TEXT, "log_odds"), "gradient_x_input", **QUIET)
    assert calibrated.scores == pytest.approx([2 * s for s in raw.scores], rel=1e-4, abs=1e-6)
    assert calibrated.target_details["calibration"] == pytest.approx({"slope": 2.0, "intercept": -1.0}, abs=1e-4)
    assert "before calibration" in raw.target_description


def test_a_calibration_that_is_not_platt_scaling_is_refused_on_calibrated_scales(tiny_runtime):
    with pytest.raises(ConfigError, match="not Platt scaling"):
        ClassifierTarget(OddToy(tiny_runtime), TEXT, "log_odds")
    assert ClassifierTarget(OddToy(tiny_runtime), TEXT, "raw_log_odds").details()["calibration"] is None
