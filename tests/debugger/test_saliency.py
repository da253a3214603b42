import pytest
import torch

from shieldkit.debugger import METHODS, ClassifierTarget, ContinuationTarget, NextTokenTarget, explain
from shieldkit.debugger.registry import MethodRegistry
from shieldkit.errors import ConfigError
from shieldkit.model.internals import input_embeddings, sequence_logprob

import shieldkit_test_toy_classifier as toy  # noqa: E402  (registered by conftest.py)

PROMPT = "The quick brown fox, tired of running,"
CONTINUATION = " jumps over the lazy dog and sleeps"
QUIET = {"progress": lambda done, total: None}


@pytest.fixture(scope="module")
def span_target(tiny_runtime):
    return ContinuationTarget(tiny_runtime, PROMPT, CONTINUATION, span=(1, 3))


def _value(target, embeddings):
    return float(target.scores(embeddings[None])[0])


def _value64(target, embeddings):
    """The target in float64 (the targets' own ``scores`` return float32)."""
    with torch.no_grad():
        if isinstance(target, ClassifierTarget):
            logits = target.classifier.logits_from_embeddings(embeddings[None].double())
            return float(torch.softmax(logits, -1)[0, 1])
        logits = target.runtime.model(inputs_embeds=embeddings[None].double(), logits_to_keep=target.positions).logits
        return float(target.score_logits(logits)[0])


def test_target_value_is_the_span_log_probability(tiny_runtime, span_target):
    ids = span_target.document.ids
    start, end = span_target.highlight
    expected = sequence_logprob(tiny_runtime.forward(ids).logits, ids, start, end)
    result = explain(span_target, "gradient_x_input", **QUIET)
    assert result.target_value == pytest.approx(float(expected), abs=1e-4)
    assert result.text == PROMPT + CONTINUATION


def test_gradient_x_input_matches_finite_differences(double_runtime):
    """score_t = ∇_t f · x_t is the derivative of f when token t's embedding is scaled by (1 + ε)."""
    span_target = ContinuationTarget(double_runtime, PROMPT, CONTINUATION, span=(1, 3))
    result = explain(span_target, "gradient_x_input", **QUIET)
    x = input_embeddings(double_runtime, span_target.document.ids)
    eps = 1e-2  # Gemma's RMSNorm computes in float32 even in a float64 model: smaller steps drown in its rounding
    checked = 0
    for t in range(1, span_target.influence_end):
        up, down = x.clone(), x.clone()
        up[t] *= 1 + eps
        down[t] *= 1 - eps
        numeric = (_value64(span_target, up) - _value64(span_target, down)) / (2 * eps)
        assert result.tokens[t].score == pytest.approx(numeric, rel=1e-2, abs=1e-6), t
        checked += abs(numeric) > 1e-3
    assert checked >= 3  # the check is not vacuous


@pytest.mark.parametrize("method", METHODS.names())
def test_tokens_after_the_span_get_exactly_zero(span_target, method):
    result = explain(span_target, method, **QUIET)
    scores = torch.tensor(result.scores)
    assert torch.all(scores[span_target.influence_end:] == 0)  # causally cannot influence the span
    assert scores[0] == 0  # <bos> is held fixed
    assert scores[1:span_target.influence_end].abs().sum() > 0


def test_integrated_gradients_completeness(span_target):
    result = explain(span_target, "integrated_gradients", steps=64, **QUIET)
    c = result.completeness
    assert c.attribution_sum == pytest.approx(sum(result.scores))
    assert c.target_value == pytest.approx(result.target_value)
    assert abs(c.gap) <= 0.02 * abs(c.target_value - c.baseline_value) + 1e-4
    assert c.relative_gap < 0.02


def test_integrated_gradients_batching_does_not_change_the_answer(span_target):
    small = explain(span_target, "integrated_gradients", steps=8, batch_size=3, **QUIET)
    whole = explain(span_target, "integrated_gradients", steps=8, batch_size=8, **QUIET)
    torch.testing.assert_close(torch.tensor(small.scores), torch.tensor(whole.scores), atol=1e-5, rtol=1e-4)


def test_leave_one_out_is_the_drop_when_a_token_is_zeroed(tiny_runtime, span_target):
    result = explain(span_target, "leave_one_out", batch_size=4, **QUIET)
    x = input_embeddings(tiny_runtime, span_target.document.ids).float()
    for t in (1, span_target.influence_end - 1):
        holed = x.clone()
        holed[t] = 0
        assert result.tokens[t].score == pytest.approx(_value(span_target, x) - _value(span_target, holed), abs=1e-4)


def test_gradient_norm_is_unsigned(span_target):
    result = explain(span_target, "gradient_norm", **QUIET)
    assert not result.signed and min(result.scores) >= 0


def test_next_token_target_and_contrast(tiny_runtime):
    plain = NextTokenTarget(tiny_runtime, PROMPT, rank=1, top_k=5)
    assert [c.rank for c in plain.candidates] == [0, 1, 2, 3, 4]
    assert plain.candidates[0].probability >= plain.candidates[1].probability
    contrast = NextTokenTarget(tiny_runtime, PROMPT, plain.candidates[0].id, contrast=plain.candidates[1].id)
    result = explain(contrast, "gradient_x_input", **QUIET)
    assert result.target_value == pytest.approx(plain.candidates[0].logprob - plain.candidates[1].logprob, abs=1e-4)
    with pytest.raises(ConfigError, match="not one"):
        NextTokenTarget(tiny_runtime, PROMPT, " hippopotamus monstrosity")


def test_chat_prompt_control_tokens_are_held_fixed(tiny_runtime):
    chat = [{"role": "user", "content": "Name a colour."}]
    target = ContinuationTarget(tiny_runtime, chat, "Blue, like the sea.")
    result = explain(target, "gradient_x_input", **QUIET)
    control = [t for t in result.tokens if t.kind == "control"]
    assert [t.piece for t in control[:2]] == ["<bos>", "<start_of_turn>"]
    assert all(t.score == 0 for t in control)
    assert result.text.startswith("<start_of_turn>user\nName a colour.")


def test_classifier_target_attributes_only_the_text(toy_classifier):
    text = "You are all wonderful people"
    target = ClassifierTarget(toy_classifier, text)
    result = explain(target, "gradient_x_input", **QUIET)
    outside = [t for t in result.tokens if t.kind == "outside"]
    inside = [t for t in result.tokens if t.kind == "text"]
    assert outside and all(t.score == 0 for t in outside)
    assert "".join(text[t.start:t.end] for t in inside) == text
    logits = toy_classifier.logits_from_embeddings(
        input_embeddings(toy_classifier.runtime, toy_classifier.prepare(text).input_ids)[None])
    assert result.target_value == pytest.approx(float(logits[0, 1] - logits[0, 0]), abs=1e-4)
    assert result.target_details["decision"]["score"] == pytest.approx(toy_classifier.score([text])[0])


def test_classifier_gradient_x_input_matches_finite_differences(double_runtime):
    classifier = toy.ToyClassifier(double_runtime)
    target = ClassifierTarget(classifier, "a short harmless text", score="probability")
    result = explain(target, "gradient_x_input", **QUIET)
    x = input_embeddings(double_runtime, target.document.ids)
    eps = 1e-2  # Gemma's RMSNorm computes in float32 even in a float64 model: smaller steps drown in its rounding
    for t in [t.index for t in result.tokens if t.kind == "text"]:
        up, down = x.clone(), x.clone()
        up[t] *= 1 + eps
        down[t] *= 1 - eps
        numeric = (_value64(target, up) - _value64(target, down)) / (2 * eps)
        assert result.tokens[t].score == pytest.approx(numeric, rel=1e-2, abs=1e-7), t


def test_classifier_without_gradients_is_refused(opaque_classifier):
    with pytest.raises(ConfigError, match="gradients"):
        ClassifierTarget(opaque_classifier, "some text")


def test_registry_is_explicit():
    registry = MethodRegistry()
    registry.register(METHODS.get("gradient_x_input"))
    with pytest.raises(ConfigError, match="already registered"):
        registry.register(METHODS.get("gradient_x_input"))
    with pytest.raises(ConfigError, match="known: gradient_x_input"):
        registry.get("shap")
    with pytest.raises(ConfigError, match="no option 'step'.*steps"):
        METHODS.create("integrated_gradients", step=3)


@pytest.mark.parametrize("options, field", [
    ({"steps": 0}, "steps"), ({"baseline": "mean"}, "baseline"), ({"rule": "simpson"}, "rule"),
    ({"batch_size": -1}, "batch_size"), ({"density": 100}, "density"),
])
def test_bad_settings_name_the_field(options, field):
    with pytest.raises(ConfigError, match=field):
        METHODS.create("integrated_gradients", **options)


def test_bad_spans_are_clear_errors(tiny_runtime):
    with pytest.raises(ConfigError, match="span"):
        ContinuationTarget(tiny_runtime, PROMPT, CONTINUATION, span=(3, 3))
    with pytest.raises(ConfigError, match="continuation must not be empty"):
        ContinuationTarget(tiny_runtime, PROMPT, "")
    with pytest.raises(ConfigError, match="prompt must not be empty"):
        ContinuationTarget(tiny_runtime, "  ", CONTINUATION)


def test_leave_one_out_prefix_cache_matches_full_passes(tiny_runtime):
    """Longer than the tiny model's sliding window (16), so the cached prefix crosses it."""
    target = ContinuationTarget(tiny_runtime, "The quick brown fox jumps over the lazy dog. " * 3, " and then it slept")
    cached = explain(target, "leave_one_out", batch_size=5, **QUIET)

    class Plain:  # the same target without the optional PrefixScorer method
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            if name == "scores_after":
                raise AttributeError(name)
            return getattr(self._inner, name)

    plain = explain(Plain(target), "leave_one_out", batch_size=5, **QUIET)
    torch.testing.assert_close(torch.tensor(cached.scores), torch.tensor(plain.scores), atol=1e-4, rtol=1e-4)


def test_long_inputs_get_smaller_batches_not_an_out_of_memory():
    from shieldkit.debugger.methods.shared import TOKENS_PER_PASS, batch_for

    assert batch_for(8, 60) == 8  # short prompts: the configured batch
    assert batch_for(8, 2000) == 2 and batch_for(8, TOKENS_PER_PASS * 2) == 1
    assert all(batch_for(8, tokens) * tokens <= max(TOKENS_PER_PASS, tokens) for tokens in range(1, 10_000, 37))
