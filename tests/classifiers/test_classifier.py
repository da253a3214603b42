"""A policy head on the tiny safety model: contract, save/load, determinism, isolation, bank."""

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
from shieldkit.classifiers.gemma import pad_batch
from shieldkit.errors import ConfigError, DataError
from shieldkit.model import GenerationConfig

from .conftest import TOY_PAIRS

PROBES = ["I hate the green people and want them all gone", "The recipe needs two cups of sugar", "", "tea " * 40]


def close(a, b, tol=1e-5):
    return all(abs(x - y) <= tol for x, y in zip(a, b)) and len(a) == len(b)


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


def test_card_records_threshold_calibration_and_provenance(toy_classifier, toy_safety, toy_config):
    card = toy_classifier.card
    assert 0.0 < card.threshold < 1.0
    assert card.safety_model == toy_safety[0].card.fingerprint
    assert card.training == toy_config.to_dict()
    assert card.data["n"] == len(TOY_PAIRS) and len(card.data["sha256"]) == 64
    cv = card.metrics["cross_validated"]
    assert cv["n"] == len(TOY_PAIRS) and set(cv) >= {"f1", "precision", "recall", "roc_auc", "ece"}
    assert card.calibration.slope > 0 and card.metrics["c"] > 0


def test_save_load_round_trip_gives_the_same_scores(toy_classifier, toy_folder, tiny_runtime, toy_safety_folder):
    from shieldkit.classifiers import load_safety_model

    assert sorted(p.name for p in toy_folder.iterdir()) == ["classifier.json", "head.safetensors"]
    card = json.loads((toy_folder / "classifier.json").read_text())
    assert card["policy"] == "toy" and card["labels"] == ["allowed", "violates"] and card["format_version"] == 2
    config = json.loads((toy_safety_folder / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["layers_to_transform"] == [2]
    safety = load_safety_model(tiny_runtime, toy_safety_folder)
    reloaded = load_classifier(toy_folder, tiny_runtime, safety=safety)
    assert close(reloaded.score(PROBES), toy_classifier.score(PROBES))
    assert reloaded.threshold == toy_classifier.threshold


def test_same_data_same_head(toy_classifier, tiny_runtime, toy_config, toy_safety):
    again = train_classifier(TOY_PAIRS, tiny_runtime, policy="toy", description="x", config=toy_config, safety=toy_safety[0])
    assert close(again.score(PROBES), toy_classifier.score(PROBES), 1e-6)


def test_refuses_a_head_of_another_safety_model_and_a_different_base_model(toy_folder, toy_safety_folder, tiny_runtime,
                                                                             toy_safety, tmp_path):
    from shieldkit.classifiers import load_safety_model

    copy = tmp_path / "copy"
    shutil.copytree(toy_folder, copy)
    card = json.loads((copy / "classifier.json").read_text())
    card["safety_model"] = "0" * 16
    (copy / "classifier.json").write_text(json.dumps(card))
    with pytest.raises(ConfigError, match=r"fitted on safety model 000000000000.*retrain"):
        load_classifier(copy, tiny_runtime, safety=toy_safety[0])
    other = tmp_path / "safety"
    shutil.copytree(toy_safety_folder, other)
    values = json.loads((other / "safety.json").read_text())
    values["base_model"]["fingerprint"] = "f" * 16
    (other / "safety.json").write_text(json.dumps(values))
    with pytest.raises(ConfigError, match=r"trained on base model .*fingerprint ffffffffffff"):
        load_safety_model(tiny_runtime, other)


def test_a_corrupt_adapter_is_refused(toy_safety_folder, tiny_runtime, tmp_path):
    from safetensors.torch import load_file, save_file

    from shieldkit.classifiers import load_safety_model

    other = tmp_path / "safety"
    shutil.copytree(toy_safety_folder, other)
    state = load_file(str(other / "adapter_model.safetensors"))
    key = sorted(state)[0]
    state[key] = state[key] + 1
    save_file(state, str(other / "adapter_model.safetensors"))
    with pytest.raises(ConfigError, match="does not match the fingerprint"):
        load_safety_model(tiny_runtime, other)


def test_an_old_per_policy_lora_folder_says_retrain(tmp_path, tiny_runtime, toy_safety):
    (tmp_path / "classifier.json").write_text(json.dumps({"policy": "old", "format_version": 1}))
    with pytest.raises(ConfigError, match="older shieldkit.*retrain it with `shieldkit train`"):
        load_classifier(tmp_path, tiny_runtime, safety=toy_safety[0])


def test_unknown_reference_lists_the_defaults(tiny_runtime, tmp_path, toy_safety):
    with pytest.raises(ConfigError, match=r"unknown classifier 'hat'.*hate, harassment, sexual"):
        load_classifier("hat", tiny_runtime)
    with pytest.raises(ConfigError, match="not a saved classifier"):
        load_classifier(tmp_path, tiny_runtime, safety=toy_safety[0])
    assert DEFAULT_POLICIES == ("hate", "harassment", "sexual", "violence", "self_harm", "dangerous", "prompt_injection")


def test_too_few_examples_for_cross_validation(tiny_runtime, toy_safety):
    with pytest.raises(DataError, match="3-fold cross-validation needs at least 3 examples of each class"):
        train_classifier([("a", 1), ("b", 1), ("c", 0), ("d", 0), ("e", 0)], tiny_runtime, policy="p", safety=toy_safety[0])


def test_bank_scores_equal_individual_scores(toy_classifier, toy_folder, tiny_runtime, tmp_path, toy_config, toy_safety):
    safety = toy_safety[0]
    second = train_classifier([(t, 1 - y) for t, y in TOY_PAIRS], tiny_runtime, policy="inverse", config=toy_config,
                              safety=safety)
    second.save(tmp_path / "inverse")
    bank = load_bank([toy_folder, tmp_path / "inverse"], tiny_runtime, safety=safety)
    assert set(bank.classifiers) == {"toy", "inverse"}
    both = bank.score(PROBES)
    assert close(both["toy"], toy_classifier.score(PROBES))
    assert close(both["inverse"], second.score(PROBES))
    assert close(bank.score(PROBES, ["inverse"])["inverse"], both["inverse"])
    with pytest.raises(ConfigError, match="unknown policy 'nope'; this bank has: toy, inverse"):
        bank.score(PROBES, ["nope"])
    with pytest.raises(ConfigError, match="two classifiers for policy 'toy'"):
        load_bank([toy_folder, toy_folder], tiny_runtime, safety=safety)


def test_a_score_does_not_depend_on_the_rest_of_the_batch(toy_classifier):
    alone = [toy_classifier.score([text])[0] for text in PROBES]
    together = toy_classifier.score(PROBES + ["x " * 30, "another unrelated sentence about the sea"])
    assert close(alone, together[: len(PROBES)], 1e-5)


def test_the_safety_model_shares_the_base_weights(toy_safety, tiny_runtime):
    base = dict(tiny_runtime.model.named_parameters())
    for name, param in toy_safety[0].network.named_parameters():
        if "lora_" in name:
            continue
        original = base[name.removeprefix("base_model.model.").replace(".base_layer", "")]
        assert param.data_ptr() == original.data_ptr()


def test_generation_is_unchanged_by_loading_and_scoring(tiny_runtime, toy_folder, toy_safety_folder):
    from shieldkit.classifiers import load_safety_model

    config = GenerationConfig(max_new_tokens=12)
    prompts = ["The weather today", [{"role": "user", "content": "Say hello"}]]
    before = [tiny_runtime.generate(p, config).text for p in prompts]
    logits_before = tiny_runtime.forward("Check the logits too").logits
    safety = load_safety_model(tiny_runtime, toy_safety_folder)
    load_bank([toy_folder], tiny_runtime, safety=safety).score(PROBES)
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
    assert "".join(text[a:b] for a, b in prepared.offsets) == text


def test_logits_from_embeddings_match_the_score_and_are_differentiable(toy_classifier):
    from shieldkit.model.internals import input_embeddings

    runtime = toy_classifier.runtime
    texts = [PROBES[0], PROBES[1]]
    ids, mask = pad_batch([toy_classifier.prepare(t).input_ids for t in texts])
    embeddings = input_embeddings(runtime, ids).detach().requires_grad_(True)
    logits = toy_classifier.logits_from_embeddings(embeddings, mask)
    assert logits.shape == (2, 2)
    z = logits[:, 1] - logits[:, 0]
    torch.testing.assert_close(toy_classifier.calibrated(z.detach()), torch.tensor(toy_classifier.score(texts)),
                               atol=1e-5, rtol=1e-4)
    z.sum().backward()
    assert embeddings.grad.abs().sum() > 0
    assert all(p.grad is None for p in toy_classifier.safety.network.parameters())


def test_long_texts_are_scored_window_by_window(toy_classifier):
    hateful = "I hate the green people and want them all gone"
    filler = "The recipe needs two cups of flour. " * 12  # more than the safety model's 32-token window
    scores = toy_classifier.score([filler + hateful, filler, hateful])
    assert scores[0] >= scores[1] - 1e-6
    assert len(toy_classifier.safety.windows([filler + hateful])) > 1
    with pytest.raises(ConfigError, match="texts must be a list of strings"):
        toy_classifier.score("one string")
    with pytest.raises(ConfigError, match=r"texts\[1\] must be a string"):
        toy_classifier.score(["ok", 3])
