import pytest

from shieldkit.classifiers import TrainingConfig
from shieldkit.errors import ConfigError


@pytest.mark.parametrize(
    "field, value",
    [("epochs", 0), ("learning_rate", -1.0), ("learning_rate", float("nan")), ("rank", 0), ("batch_size", 2.5),
     ("max_tokens", 2), ("cv_folds", 1), ("seed", -1), ("probe_c", 0), ("alpha", 0), ("readout_layer", 0),
     ("target_modules", ("q_proj", "nope")), ("target_modules", ())],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"TrainingConfig\.{field}"):
        TrainingConfig(**{field: value})


def test_layer_span_defaults_follow_depth():
    assert TrainingConfig().layer_span(18) == (6, 12)
    assert TrainingConfig().layer_span(4) == (2, 3)
    assert TrainingConfig(readout_layer=10, lora_layers=3).layer_span(18) == (7, 10)
    with pytest.raises(ConfigError, match="readout_layer 20 exceeds"):
        TrainingConfig(readout_layer=20).layer_span(18)
    with pytest.raises(ConfigError, match="lora_layers"):
        TrainingConfig(readout_layer=4, lora_layers=5)


def test_round_trip_through_dict():
    config = TrainingConfig(epochs=3, target_modules=("q_proj", "v_proj"))
    assert TrainingConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        TrainingConfig.from_dict({"colour": "red"})
