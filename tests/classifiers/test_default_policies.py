"""The committed default policies: data within limits, a trained folder for each, retraining settings recorded."""

import json

import pytest

from shieldkit.classifiers import DEFAULT_POLICIES, default_policy, load_examples
from shieldkit.classifiers.defaults import DEFAULT_TRAINING
from shieldkit.classifiers.storage import read_card


@pytest.mark.parametrize("name", DEFAULT_POLICIES)
def test_each_default_policy_has_examples_and_a_trained_classifier(name):
    spec = default_policy(name)
    assert len(spec.description) > 80
    data = load_examples(spec.examples)
    assert len(data) <= 100 and not data.duplicates
    assert 25 <= data.positives <= len(data) - 25
    card = read_card(spec.classifier)
    assert card.policy == name and card.description == spec.description
    assert card.data["sha256"] == data.fingerprint(), "examples changed since training: run `make policies`"
    assert card.training == DEFAULT_TRAINING.to_dict()
    assert 0.0 < card.threshold < 1.0
    config = json.loads((spec.classifier / "adapter_config.json").read_text())
    assert not config["base_model_name_or_path"].startswith("/")
    size = sum(p.stat().st_size for p in spec.classifier.iterdir())
    assert size < 1_000_000


def test_unknown_default_policy_lists_the_known_ones():
    from shieldkit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown default policy 'spam'; known: hate, harassment"):
        default_policy("spam")
