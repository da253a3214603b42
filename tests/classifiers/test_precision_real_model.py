"""bfloat16, mixed and int8 against float32 on the real Gemma 3 270M with the shipped safety model and the seven default
policies.

The bar (issue 11, item 2): on the team's everyday messages and the harmful / injection texts of
``harmful_messages.txt``, every policy's score is within 0.01 of float32 (absolute, on the calibrated probability
the thresholds use), with the same flagged/allowed decision except where the float score is within 0.01 of the
threshold. A precision may be what ``auto`` picks only if that holds. bfloat16 keeps it with AMX (``auto`` picks it
there) but not with AVX512-BF16 alone (up to 0.016 on an AMD Zen 5, 2026-12-04); mixed keeps it on both (``auto``
picks it on AVX512-BF16 CPUs without AMX); int8 does not on the shipped safety model (BENCHMARKS.md has the numbers), so its bar is an expected
failure here, strict: the day a safety model keeps it, the suite says so.
"""

from pathlib import Path

import pytest
import torch

from shieldkit.classifiers import DEFAULT_POLICIES, load_bank, stack
from shieldkit.classifiers.gemma import pad_batch
from shieldkit.classifiers.scoring_layers import ScoringLayers
from shieldkit.classifiers.safety import score_heads
from shieldkit.model import ModelSettings, quantize

pytestmark = pytest.mark.real_model

BOUND = 0.01  # absolute, on the calibrated probability


def _lines(name: str) -> list[str]:
    with (Path(__file__).with_name(name)).open(encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip() and not line.startswith("#")]


EVERYDAY = _lines("everyday_messages.txt")
HARMFUL = _lines("harmful_messages.txt")


@pytest.fixture(scope="module")
def scored(real_runtime):
    """(bank, texts, {precision: scores}) for float32, bfloat16, mixed and int8: every default policy, once per
    module."""
    bank = load_bank(None, real_runtime)
    texts = EVERYDAY + HARMFUL
    return bank, texts, {precision: score_heads(bank.safety, bank.classifiers, texts, precision=precision)
                         for precision in ("float32", "bfloat16", "mixed", "int8")}


@pytest.fixture(scope="module")
def measured(scored):
    """(bank, texts, float32 scores, int8 scores)."""
    bank, texts, scores = scored
    return bank, texts, scores["float32"], scores["int8"]


@pytest.fixture(scope="module")
def measured_bf16(scored):
    """(bank, texts, float32 scores, bfloat16 scores)."""
    bank, texts, scores = scored
    return bank, texts, scores["float32"], scores["bfloat16"]


@pytest.fixture(scope="module")
def measured_mixed(scored):
    """(bank, texts, float32 scores, mixed scores)."""
    bank, texts, scores = scored
    return bank, texts, scores["float32"], scores["mixed"]


NATIVE_BF16 = quantize.has_amx() or quantize.has_avx512_bf16()


def _deviations(measured) -> dict[str, float]:
    _, _, reference, fast = measured
    return {name: max(abs(a - b) for a, b in zip(reference[name], fast[name])) for name in reference}


def _flips(measured) -> list[tuple[str, str, float, float]]:
    """(policy, text, float score, other score) where the decision differs and the float score is not near the
    threshold."""
    bank, texts, reference, fast = measured
    out = []
    for name, classifier in bank.classifiers.items():
        threshold = classifier.threshold
        for text, f, q in zip(texts, reference[name], fast[name]):
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
    merged = ScoringLayers(safety, "float32")
    sample = texts[::8]
    windows = [ids for _, ids in safety.windows(sample, first_only=True)]
    ids, mask = pad_batch(windows, pad_value=safety.runtime.tokenizer.pad_token_id or 0)
    with torch.inference_mode():
        hidden = safety.runtime.model.get_input_embeddings()(ids)  # [B, T, D]
        states = stack.mean_pool(merged(hidden, stack.build_context(safety.runtime.model, hidden, mask)), mask)
    reference, _ = safety.pooled(sample, first_only=True)
    assert torch.allclose(states, reference, rtol=1e-4, atol=1e-3)


@pytest.mark.skipif(not quantize.has_amx(), reason="the 0.01 bound holds for all-bfloat16 with AMX's kernels, where "
                    "auto picks bfloat16; elsewhere bfloat16 is opt-in (up to 0.016 on AVX512-BF16, more on AVX2)")
def test_bfloat16_scores_stay_within_001_of_float32_with_the_same_decisions(measured_bf16):
    deviations = _deviations(measured_bf16)
    assert all(value <= BOUND for value in deviations.values()), deviations
    assert not _flips(measured_bf16)


@pytest.mark.skipif(not NATIVE_BF16, reason="mixed is for CPUs with native bfloat16 matmuls (AMX or AVX512-BF16); "
                    "on AVX2 they are emulated, slower than float32, and auto never picks them")
def test_mixed_scores_stay_within_001_of_float32_with_the_same_decisions(measured_mixed):
    deviations = _deviations(measured_mixed)
    assert all(value <= BOUND for value in deviations.values()), deviations
    assert not _flips(measured_mixed)


def test_auto_picks_only_a_precision_that_keeps_the_bound(measured, monkeypatch):
    """auto resolves to bfloat16 (AMX), mixed (AVX512-BF16) or float32, never int8; and int8 keeps failing the
    bound it would need."""
    int8_within = max(_deviations(measured).values()) <= BOUND and not _flips(measured)
    assert ModelSettings.model_fields["classifier_precision"].default == "auto"
    model = measured[0].safety.runtime.model
    for amx, avx512_bf16, expected in ((True, False, "bfloat16"), (False, True, "mixed"), (False, False, "float32")):
        monkeypatch.setattr(quantize, "has_amx", lambda amx=amx: amx)
        monkeypatch.setattr(quantize, "has_avx512_bf16", lambda value=avx512_bf16: value)
        assert quantize.resolve_classifier_precision("auto", model) == expected
    assert not int8_within, "int8 keeps the 0.01 bound now: auto could pick it"


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
