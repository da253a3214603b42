"""int8 against float32 on the real Gemma 3 270M with the shipped safety model and the seven default policies.

The bar (issue 11, item 2): on the team's everyday messages and the harmful / injection texts of
``harmful_messages.txt``, every policy's int8 score is within 0.01 of float32 (absolute, on the calibrated
probability the thresholds use), with the same flagged/allowed decision except where the float score is within
0.01 of the threshold. int8 becomes the default precision only if that holds; on the shipped safety model it does
not (BENCHMARKS.md has the numbers), so the bar itself is an expected failure here, strict: the day a safety model
keeps it, the suite says so and the default can switch.
"""

from pathlib import Path

import pytest
import torch

from shieldkit.classifiers import DEFAULT_POLICIES, load_bank, stack
from shieldkit.classifiers.gemma import pad_batch
from shieldkit.classifiers.int8 import ScoringLayers
from shieldkit.classifiers.safety import score_heads
from shieldkit.model import ModelSettings

pytestmark = pytest.mark.real_model

BOUND = 0.01  # absolute, on the calibrated probability


def _lines(name: str) -> list[str]:
    with (Path(__file__).with_name(name)).open(encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip() and not line.startswith("#")]


EVERYDAY = _lines("everyday_messages.txt")
HARMFUL = _lines("harmful_messages.txt")


@pytest.fixture(scope="module")
def measured(real_runtime):
    """(bank, texts, float32 scores, int8 scores): every default policy, scored in batches, once per module."""
    bank = load_bank(None, real_runtime)
    heads = bank.classifiers
    texts = EVERYDAY + HARMFUL
    reference = score_heads(bank.safety, heads, texts, precision="float32")
    int8 = score_heads(bank.safety, heads, texts, precision="int8")
    return bank, texts, reference, int8


def _deviations(measured) -> dict[str, float]:
    _, _, reference, int8 = measured
    return {name: max(abs(a - b) for a, b in zip(reference[name], int8[name])) for name in reference}


def _flips(measured) -> list[tuple[str, str, float, float]]:
    """(policy, text, float score, int8 score) where the decision differs and the float score is not near the
    threshold."""
    bank, texts, reference, int8 = measured
    out = []
    for name, classifier in bank.classifiers.items():
        threshold = classifier.threshold
        for text, f, q in zip(texts, reference[name], int8[name]):
            if (f >= threshold) != (q >= threshold) and abs(f - threshold) > BOUND:
                out.append((name, text, round(f, 3), round(q, 3)))
    return out


def test_texts_cover_every_default_policy(measured):
    bank, texts, reference, _ = measured
    assert set(bank.classifiers) == set(DEFAULT_POLICIES) and len(EVERYDAY) >= 100 and len(HARMFUL) >= 30
    for name, classifier in bank.classifiers.items():  # each policy flags at least one harmful text in float32
        assert any(score >= classifier.threshold for score in reference[name][len(EVERYDAY):]), name


def test_the_merged_copy_is_exact_on_the_shipped_adapter(measured):
    """Merging the shipped LoRA into the weights changes nothing beyond float rounding: what int8 loses is the
    quantization alone."""
    bank, texts, _, _ = measured
    safety = bank.safety
    merged = ScoringLayers(safety, quantized=False)
    sample = texts[::8]
    windows = [ids for _, ids in safety.windows(sample, first_only=True)]
    ids, mask = pad_batch(windows, pad_value=safety.runtime.tokenizer.pad_token_id or 0)
    with torch.inference_mode():
        hidden = safety.runtime.model.get_input_embeddings()(ids)  # [B, T, D]
        states = stack.mean_pool(merged(hidden, stack.build_context(safety.runtime.model, hidden, mask)), mask)
    reference, _ = safety.pooled(sample, first_only=True)
    assert torch.allclose(states, reference, rtol=1e-4, atol=1e-3)


def test_int8_is_the_default_only_if_it_keeps_the_bound(measured):
    deviations, flips = _deviations(measured), _flips(measured)
    within = max(deviations.values()) <= BOUND and not flips
    default = ModelSettings.model_fields["classifier_precision"].default
    report = ", ".join(f"{name} {value:.4f}" for name, value in deviations.items())
    if within:
        assert default == "int8", f"int8 keeps the 0.01 bound now (max |int8 - float32|: {report}): make it the default"
    else:
        assert default == "float32", f"int8 misses the 0.01 bound ({report}; {len(flips)} flipped decisions)"


@pytest.mark.xfail(strict=True, reason="measured on the shipped safety model: dynamic int8 moves default-policy "
                                       "scores by up to about 0.65 and flips decisions (BENCHMARKS.md)")
def test_int8_scores_stay_within_001_of_float32_with_the_same_decisions(measured):
    deviations = _deviations(measured)
    assert all(value <= BOUND for value in deviations.values()), deviations
    assert not _flips(measured)


def test_int8_computes_the_same_function_on_average(measured):
    """Not the bar: a guard that the opt-in int8 path is the float network quantized, not a broken copy (a wrong
    merge or layer order moves every score, not a few). Measured mean |int8 - float32| per policy: 0.002-0.011."""
    _, texts, reference, int8 = measured
    for name in reference:
        mean = sum(abs(a - b) for a, b in zip(reference[name], int8[name])) / len(texts)
        assert mean <= 0.03, (name, mean)
