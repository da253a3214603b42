"""The LoRA classifier on the tiny random Gemma: contract, save/load, determinism, isolation, bank."""

import json
import shutil

import pytest
import torch

from shieldkit.classifiers import (
    DEFAULT_POLICIES,
    GRADIENTS,
    ExplainableClassifier,
    SafetyClassifier,
    decide,
    load_bank,
    load_classifier,
    train_classifier,
)
from shieldkit.classifiers.gemma import GemmaClassifier
from shieldkit.errors import ConfigError, DataError
from shieldkit.model import GenerationConfig

from .conftest import TOY_PAIRS

PROBES = ["I hate the green people and want them all gone", "The recipe needs two cups of sugar", "", "tea " * 40]


def test_implements_the_contract(toy_classifier):
    assert isinstance(toy_classifier, SafetyClassifier)
    assert isinstance(toy_classifier, ExplainableClassifier)
    assert GRADIENTS in toy_classifier.capabilities
    assert toy_classifier.name == "toy"
    assert toy_classifier.description.startswith("Toy policy")
    scores = toy_classifier.score(PROBES)
    assert len(scores) == len(PROBES) and all(0.0 <= s <= 1.0 for s in scores)
    decisions = decide(toy_classifier, PROBES[:2])
    assert [d.flagged for d in decisions] == [s >= toy_classifier.threshold for s in scores[:2]]


def test_learns_the_training_data(toy_classifier):
    scores = toy_classifier.score([text for text, _ in TOY_PAIRS])
    labels = [label for _, label in TOY_PAIRS]
    worst_positive = min(s for s, y in zip(scores, labels) if y)
    best_negative = max(s for s, y in zip(scores, labels) if not y)
    assert worst_positive > best_negative


def test_card_records_threshold_calibration_and_provenance(toy_classifier, tiny_runtime, toy_config):
    card = toy_classifier.card
    assert 0.0 < card.threshold < 1.0
    assert card.base_model["fingerprint"] == tiny_runtime.info.fingerprint
    assert card.training == toy_config.to_dict()
    assert card.data["n"] == len(TOY_PAIRS) and len(card.data["sha256"]) == 64
    cv = card.metrics["cross_validated"]
    assert cv["n"] == len(TOY_PAIRS) and set(cv) >= {"f1", "precision", "recall", "roc_auc", "ece"}
    assert card.calibration.slope > 0


def test_save_load_round_trip_gives_identical_scores(toy_classifier, toy_folder, tiny_runtime):
    names = sorted(p.name for p in toy_folder.iterdir())
    assert names == ["adapter_config.json", "adapter_model.safetensors", "classifier.json", "head.safetensors"]
    card = json.loads((toy_folder / "classifier.json").read_text())
    assert card["policy"] == "toy" and card["labels"] == ["allowed", "violates"]
    config = json.loads((toy_folder / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["layers_to_transform"] == [2]
    reloaded = load_classifier(toy_folder, tiny_runtime)
    assert reloaded.score(PROBES) == toy_classifier.score(PROBES)
    assert reloaded.threshold == toy_classifier.threshold


def test_same_seed_same_classifier_other_seed_differs(toy_classifier, tiny_runtime, toy_config):
    from dataclasses import replace

    again = train_classifier(TOY_PAIRS, tiny_runtime, policy="toy", description="x", config=toy_config)
    assert again.score(PROBES) == toy_classifier.score(PROBES)
    other = train_classifier(TOY_PAIRS, tiny_runtime, policy="toy", description="x", config=replace(toy_config, seed=4))
    assert other.score(PROBES) != toy_classifier.score(PROBES)


def test_refuses_a_different_base_model(toy_folder, tiny_runtime, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(toy_folder, copy)
    card = json.loads((copy / "classifier.json").read_text())
    card["base_model"]["fingerprint"] = "0" * 64
    (copy / "classifier.json").write_text(json.dumps(card))
    with pytest.raises(ConfigError, match=r"trained on base model .*fingerprint 000000000000.*retrain"):
        load_classifier(copy, tiny_runtime)


def test_unknown_reference_lists_the_defaults(tiny_runtime, tmp_path):
    with pytest.raises(ConfigError, match=r"unknown classifier 'hat'.*hate, harassment, sexual"):
        load_classifier("hat", tiny_runtime)
    with pytest.raises(ConfigError, match="not a saved classifier"):
        load_classifier(tmp_path, tiny_runtime)
    assert DEFAULT_POLICIES == ("hate", "harassment", "sexual", "violence", "self_harm", "dangerous", "prompt_injection")


def test_too_few_examples_for_cross_validation(tiny_runtime):
    with pytest.raises(DataError, match="3-fold cross-validation needs at least 3 examples of each class"):
        train_classifier([("a", 1), ("b", 1), ("c", 0), ("d", 0), ("e", 0)], tiny_runtime, policy="p")


def test_bank_scores_equal_individual_scores(toy_classifier, toy_folder, tiny_runtime, tmp_path, toy_config):
    second = train_classifier([(t, 1 - y) for t, y in TOY_PAIRS], tiny_runtime, policy="inverse", config=toy_config)
    second.save(tmp_path / "inverse")
    bank = load_bank([toy_folder, tmp_path / "inverse"], tiny_runtime)
    assert set(bank.classifiers) == {"toy", "inverse"}  # ClassifierBank is not runtime-checkable
    both = bank.score(PROBES)
    assert both["toy"] == toy_classifier.score(PROBES)
    assert both["inverse"] == second.score(PROBES)
    assert bank.score(PROBES, ["inverse"]) == {"inverse": both["inverse"]}
    with pytest.raises(ConfigError, match="unknown policy 'nope'; this bank has: toy, inverse"):
        bank.score(PROBES, ["nope"])
    with pytest.raises(ConfigError, match="two classifiers for policy 'toy'"):
        load_bank([toy_folder, toy_folder], tiny_runtime)


def test_classifiers_share_the_base_weights(toy_classifier, toy_folder, tiny_runtime):
    other = load_classifier(toy_folder, tiny_runtime)
    base = dict(tiny_runtime.model.named_parameters())
    for network in (toy_classifier.network, other.network):
        for name, param in network.named_parameters():
            if "lora_" in name:
                continue
            original = base[name.removeprefix("base_model.model.").replace(".base_layer", "")]
            assert param.data_ptr() == original.data_ptr()


def test_generation_is_unchanged_by_loading_and_scoring(tiny_runtime, toy_folder):
    config = GenerationConfig(max_new_tokens=12)
    prompts = ["The weather today", [{"role": "user", "content": "Say hello"}]]
    before = [tiny_runtime.generate(p, config).text for p in prompts]
    logits_before = tiny_runtime.forward("Check the logits too").logits
    bank = load_bank([toy_folder], tiny_runtime)
    bank.score(PROBES)
    load_classifier(toy_folder, tiny_runtime).score(PROBES[:1])
    assert [tiny_runtime.generate(p, config).text for p in prompts] == before
    assert torch.equal(tiny_runtime.forward("Check the logits too").logits, logits_before)
    assert not any("lora" in name for name, _ in tiny_runtime.model.named_modules())
    assert not any(p.requires_grad for p in tiny_runtime.model.parameters())


def test_prepare_offsets_point_into_the_text(toy_classifier):
    text = "I hate the green people"
    prepared = toy_classifier.prepare(text)
    assert prepared.input_ids[0] == toy_classifier.runtime.tokenizer.bos_token_id
    assert prepared.text_start == 1 and prepared.text_end == len(prepared.input_ids)
    assert len(prepared.offsets) == prepared.text_end - prepared.text_start
    pieces = [text[a:b] for a, b in prepared.offsets]
    assert "".join(pieces) == text


def test_logits_from_embeddings_match_the_score_and_are_differentiable(toy_classifier):
    from shieldkit.model.internals import input_embeddings

    runtime = toy_classifier.runtime
    texts = [PROBES[0], PROBES[1]]
    prepared = [toy_classifier.prepare(t) for t in texts]
    ids, mask = GemmaClassifier_pad([p.input_ids for p in prepared])
    embeddings = input_embeddings(runtime, ids).detach().requires_grad_(True)
    logits = toy_classifier.logits_from_embeddings(embeddings, mask)
    assert logits.shape == (2, 2)
    z = logits[:, 1] - logits[:, 0]
    expected = toy_classifier.score(texts)
    torch.testing.assert_close(toy_classifier.calibrated(z.detach()), torch.tensor(expected), atol=1e-5, rtol=1e-4)
    z.sum().backward()
    assert embeddings.grad.abs().sum() > 0
    assert all(p.grad is None for p in toy_classifier.network.parameters())


def GemmaClassifier_pad(sequences):
    from shieldkit.classifiers.gemma import pad_batch

    return pad_batch(sequences)


def test_long_texts_are_scored_window_by_window(tiny_runtime, toy_classifier):
    from dataclasses import replace

    short = GemmaClassifier(tiny_runtime, replace(toy_classifier.card, max_tokens=8), toy_classifier.network,
                            toy_classifier.head)
    hateful = "I hate the green people and want them all gone"
    filler = "The recipe needs two cups of flour. " * 3
    windows = short.score([filler + hateful, filler, hateful])
    assert windows[0] >= max(windows[1], short.score([hateful[-30:]])[0]) - 1e-6
    with pytest.raises(ConfigError, match="texts must be a list of strings"):
        short.score("one string")
    with pytest.raises(ConfigError, match=r"texts\[1\] must be a string"):
        short.score(["ok", 3])
