"""The final model: the "soup" of the fold models (the default) or a refit on all examples."""

from dataclasses import replace

import pytest
import torch

from shieldkit.classifiers import TrainingConfig, train_classifier
from shieldkit.classifiers.gemma import PolicyHead, attach_lora
from shieldkit.classifiers.training import _lora_config, _soup
from shieldkit.errors import ConfigError

from .conftest import TOY_PAIRS

PROBES = ["I hate the green people", "Two cups of flour, please"]


def _random_lora(tiny_runtime, config, seed):
    start, readout = config.layer_span(tiny_runtime.info.num_layers)
    lora = _lora_config(config, start, readout)
    network = attach_lora(tiny_runtime, lora, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in network.named_parameters():
            if ".lora_B." in name:  # peft starts B at zero; give the update B·A a value
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    head = PolicyHead(tiny_runtime.info.hidden_size)
    return network, head, lora


def _updates(network):
    params = dict(network.named_parameters())
    return {a: params[a.replace(".lora_A.", ".lora_B.")] @ params[a] for a in params if ".lora_A." in a}


def test_the_soup_averages_the_fold_updates(tiny_runtime):
    config = TrainingConfig(rank=2, alpha=4.0)
    first, head, lora = _random_lora(tiny_runtime, config, seed=1)
    second, _, _ = _random_lora(tiny_runtime, config, seed=2)
    # Two copies of one model: the average is that model, and its rank-r refactoring is exact.
    soup, soup_head = _soup(tiny_runtime, [(first, head), (first, head)], lora, config)
    for name, update in _updates(soup).items():
        torch.testing.assert_close(update, _updates(first)[name], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(soup_head.weight, head.weight)
    # Two different models: the soup's update is the best rank-r approximation of their mean (never larger).
    mixed, _ = _soup(tiny_runtime, [(first, head), (second, head)], lora, config)
    for name, update in _updates(mixed).items():
        mean = (_updates(first)[name] + _updates(second)[name]) / 2
        assert torch.linalg.matrix_rank(update) <= config.rank
        assert torch.linalg.norm(update) <= torch.linalg.norm(mean) + 1e-5


def test_soup_and_refit_both_learn_and_differ(tiny_runtime, toy_config):
    soup = train_classifier(TOY_PAIRS, tiny_runtime, policy="toy", description="x", config=replace(toy_config, final_model="soup"))
    refit = train_classifier(TOY_PAIRS, tiny_runtime, policy="toy", description="x", config=replace(toy_config, final_model="refit"))
    for classifier in (soup, refit):
        hateful, recipe = classifier.score(PROBES)
        assert hateful > recipe
    assert soup.score(PROBES) != refit.score(PROBES)
    assert soup.card.training["final_model"] == "soup" and refit.card.training["final_model"] == "refit"


def test_an_unknown_final_model_is_refused():
    with pytest.raises(ConfigError, match=r"TrainingConfig\.final_model must be one of soup, refit, got 'average'"):
        TrainingConfig(final_model="average")
