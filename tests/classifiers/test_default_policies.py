"""The committed safety model and default heads: small, consistent, trained on the recorded settings and data."""

import json

import pytest

from shieldkit.classifiers import DEFAULT_POLICIES, default_policy, load_examples
from shieldkit.classifiers.defaults import DEFAULT_TRAINING
from shieldkit.classifiers.registry import SAFETY_ROOT
from shieldkit.classifiers.storage import read_card, read_safety_card


def test_the_safety_model_is_small_and_records_its_training():
    card = read_safety_card(SAFETY_ROOT)
    assert card.training == DEFAULT_TRAINING.to_dict()
    assert (card.start, card.readout) == (6, 12) and card.base_model["name"].startswith("gemma-3-270m")
    assert set(card.data["train"]) == set(DEFAULT_POLICIES)
    config = json.loads((SAFETY_ROOT / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and not config["base_model_name_or_path"].startswith("/")
    assert sum(p.stat().st_size for p in SAFETY_ROOT.iterdir()) < 8_000_000


@pytest.mark.parametrize("name", DEFAULT_POLICIES)
def test_each_default_policy_has_examples_and_a_head_on_the_safety_model(name):
    spec = default_policy(name)
    assert len(spec.description) > 80
    data = load_examples(spec.examples)
    assert not data.duplicates and data.positives >= 60 and len(data) - data.positives >= 60
    card = read_card(spec.classifier)
    assert card.policy == name and card.description == spec.description
    assert card.safety_model == read_safety_card(SAFETY_ROOT).fingerprint
    assert card.training["joint"] and 0.0 < card.threshold < 1.0
    assert "held-out benign rows" in card.metrics["threshold_rule"]
    assert (spec.classifier.parent / "CARD.md").is_file(), "each default policy ships a classifier card"


def test_unknown_default_policy_lists_the_known_ones():
    from shieldkit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown default policy 'spam'; known: hate, harassment"):
        default_policy("spam")
