"""Settings are checked when built and name the bad field."""

import pytest

from shieldkit.classifiers import TrainingConfig
from shieldkit.classifiers.safety_training import SafetyTrainingConfig
from shieldkit.errors import ConfigError


@pytest.mark.parametrize("field, value", [("cv_folds", 1), ("cv_folds", True), ("cv_repeats", 0), ("cv_repeats", 2.0),
                                          ("c", 0.0), ("c", float("nan")), ("seed", -1), ("threshold_rule", "auc")])
def test_bad_training_settings_name_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"TrainingConfig\.{field}"):
        TrainingConfig(**{field: value})


@pytest.mark.parametrize("field, value", [("epochs", 0), ("rank", 2.5), ("learning_rate", -1.0), ("fpr_budget", 0.0),
                                          ("fpr_budget", 1.5), ("max_tokens", 0), ("seed", -2), ("alpha", float("inf"))])
def test_bad_safety_settings_name_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"SafetyTrainingConfig\.{field}"):
        SafetyTrainingConfig(**{field: value})


def test_layer_span_defaults_to_the_middle_third():
    assert SafetyTrainingConfig().layer_span(18) == (6, 12)
    assert SafetyTrainingConfig().layer_span(4) == (2, 3)
    assert SafetyTrainingConfig(readout_layer=10, lora_layers=3).layer_span(18) == (7, 10)
    with pytest.raises(ConfigError, match="do not fit a 18-layer model"):
        SafetyTrainingConfig(readout_layer=20).layer_span(18)


def test_round_trip_and_unknown_settings():
    config = TrainingConfig(cv_folds=4, c=0.1)
    assert TrainingConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown setting 'epochs'"):
        TrainingConfig.from_dict({"epochs": 3})
