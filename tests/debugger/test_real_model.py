"""Decisive checks on the embedded Gemma 3 270M: the saliency points at the word that carries the answer, and
attention sinks are visible."""

import pytest
import torch

from shieldkit.debugger import NextTokenTarget, attention_maps, explain

pytestmark = pytest.mark.real_model
QUIET = {"progress": lambda done, total: None}


def _top_word(result):
    words = [s for s in result.segments("words") if s.kind == "text"]
    return max(words, key=lambda s: s.score).text.strip()


def test_the_city_drives_the_language(real_runtime):
    """log p(" Japanese") − log p(" French") after a prompt about Tokyo: the city is the most positive word."""
    target = NextTokenTarget(real_runtime, "My friend lives in Tokyo, so she speaks", " Japanese", contrast=" French")
    assert explain(target, "leave_one_out", **QUIET).target_value > 1  # the model prefers Japanese
    assert _top_word(explain(target, "leave_one_out", **QUIET)) == "Tokyo,"
    assert _top_word(explain(target, "integrated_gradients", steps=16, **QUIET)) == "Tokyo,"


def test_gemma_has_attention_sink_heads(real_runtime):
    maps = attention_maps(real_runtime, "The capital of France is Paris and the capital of Germany is Berlin.")
    assert maps.weights.shape[:2] == (18, 4)
    torch.testing.assert_close(maps.weights.sum(-1), torch.ones(maps.weights.shape[:3]), atol=1e-4, rtol=1e-4)
    assert len(maps.sink_heads(0.8)) >= 5  # several heads park most of their attention on <bos>


def test_a_default_head_is_explained_on_the_probability_it_reports(real_runtime):
    """The shipped heads are Platt-calibrated: the explained probability is the one `decide` reports."""
    from shieldkit.classifiers import decide, load_classifier
    from shieldkit.debugger import ClassifierTarget

    violence = load_classifier("violence", real_runtime)
    text = "I'm going to destroy you at chess tomorrow."
    reported = decide(violence, [text])[0].score
    result = explain(ClassifierTarget(violence, text, "probability"), "gradient_x_input", **QUIET)
    assert result.target_value == pytest.approx(reported, abs=1e-3)
