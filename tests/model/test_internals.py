import pytest
import torch

from shieldkit.errors import ConfigError
from shieldkit.model.internals import (
    batch_embedding_gradients,
    embedding_gradients,
    input_embeddings,
    sequence_logprob,
    unembed,
)

TEXT = "The quick brown fox jumps over the lazy dog"


def test_forward_shapes(tiny_runtime):
    out = tiny_runtime.forward(TEXT, hidden_states=True, attentions=True)
    tokens, layers = len(out.input_ids), tiny_runtime.info.num_layers
    assert out.logits.shape == (tokens, tiny_runtime.info.vocab_size)
    assert len(out.hidden_states) == layers + 1
    assert all(h.shape == (tokens, tiny_runtime.info.hidden_size) for h in out.hidden_states)
    assert len(out.attentions) == layers
    assert all(a.shape == (tiny_runtime.info.num_heads, tokens, tokens) for a in out.attentions)
    assert out.tokens(tiny_runtime)[0] == "<bos>"


def test_attention_rows_sum_to_one_and_are_causal(tiny_runtime):
    out = tiny_runtime.forward(TEXT, attentions=True)
    for weights in out.attentions:
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:2]))
        assert torch.all(weights.triu(diagonal=1) == 0)


def test_eager_attention_is_switched_back(tiny_runtime):
    before = tiny_runtime.model.config._attn_implementation
    tiny_runtime.forward(TEXT, attentions=True)
    assert tiny_runtime.model.config._attn_implementation == before


def test_attention_does_not_change_logits(tiny_runtime):
    plain = tiny_runtime.forward(TEXT).logits
    eager = tiny_runtime.forward(TEXT, attentions=True).logits
    torch.testing.assert_close(plain, eager, atol=1e-4, rtol=1e-4)


def test_logit_lens_on_the_last_layer_reproduces_the_logits(tiny_runtime):
    out = tiny_runtime.forward(TEXT, hidden_states=True)
    torch.testing.assert_close(unembed(tiny_runtime, out.hidden_states[-1], normed=True), out.logits)


def test_embedding_gradient_matches_finite_differences(tiny_runtime):
    ids = tiny_runtime.encode(TEXT)
    span = (len(ids) - 3, len(ids))

    def target(logits):
        return sequence_logprob(logits, ids, *span)

    grads = embedding_gradients(tiny_runtime, ids, target)
    direction = torch.randn(grads.embeddings.shape, generator=torch.Generator().manual_seed(0))
    direction /= direction.norm()
    eps = 1e-3

    def value_at(embeddings):
        with torch.no_grad():
            logits = tiny_runtime.model(inputs_embeds=embeddings[None]).logits[0].float()
        return float(target(logits))

    numeric = (value_at(grads.embeddings + eps * direction) - value_at(grads.embeddings - eps * direction)) / (2 * eps)
    analytic = float((grads.gradients * direction).sum())
    assert analytic == pytest.approx(numeric, rel=2e-2, abs=1e-4)
    assert grads.target == pytest.approx(value_at(grads.embeddings), abs=1e-4)


def test_tokens_after_the_target_get_zero_gradient(tiny_runtime):
    ids = tiny_runtime.encode(TEXT)
    grads = embedding_gradients(tiny_runtime, ids, lambda logits: sequence_logprob(logits, ids, 2, 4))
    assert torch.all(grads.gradients[4:] == 0)  # causal: later tokens cannot influence the span
    assert grads.gradients[:3].abs().sum() > 0


def test_positions_restrict_the_logits_computed(tiny_runtime):
    ids = tiny_runtime.encode(TEXT)
    last = torch.tensor([len(ids) - 1])
    seen = {}

    def target(logits):
        seen["shape"] = tuple(logits.shape)
        return logits[0, 0]

    embedding_gradients(tiny_runtime, ids, target, positions=last)
    assert seen["shape"] == (1, tiny_runtime.info.vocab_size)


def test_batch_gradients_are_per_example(tiny_runtime):
    ids = tiny_runtime.encode(TEXT)
    embeddings = input_embeddings(tiny_runtime, ids)
    batch = torch.stack([embeddings, embeddings * 0.5])
    scores, grads = batch_embedding_gradients(tiny_runtime, batch, lambda logits: logits[:, -1, 5])
    single = embedding_gradients(tiny_runtime, ids, lambda logits: logits[-1, 5])
    torch.testing.assert_close(grads[0], single.gradients, atol=1e-5, rtol=1e-4)
    assert scores.shape == (2,) and not torch.equal(grads[0], grads[1])


def test_bad_targets_and_spans_are_clear_errors(tiny_runtime):
    ids = tiny_runtime.encode(TEXT)
    with pytest.raises(ConfigError, match="span"):
        sequence_logprob(torch.zeros(len(ids), 5), ids, 0, 2)
    with pytest.raises(ConfigError, match="one score per example"):
        batch_embedding_gradients(tiny_runtime, input_embeddings(tiny_runtime, ids)[None], lambda logits: logits.sum())
    with pytest.raises(ConfigError, match="must not be empty"):
        tiny_runtime.forward("")
