import pytest
import torch

from shieldkit.debugger import attention_maps, attention_rollout, logit_lens
from shieldkit.errors import ConfigError

TEXT = "Attention sinks park weight on the first token of a long enough sentence."


@pytest.fixture(scope="module")
def maps(tiny_runtime):
    return attention_maps(tiny_runtime, TEXT, " More text.")


def test_attention_weights_per_layer_and_head_rows_sum_to_one(tiny_runtime, maps):
    info = tiny_runtime.info
    tokens = len(maps.document)
    assert maps.weights.shape == (info.num_layers, info.num_heads, tokens, tokens)
    torch.testing.assert_close(maps.weights.sum(-1), torch.ones(info.num_layers, info.num_heads, tokens))
    torch.testing.assert_close(maps.head_average.sum(-1), torch.ones(info.num_layers, tokens))
    assert torch.all(maps.weights.triu(diagonal=1) == 0)
    assert maps.layer_types[-1] == "full_attention"
    assert tiny_runtime.model.config._attn_implementation != "eager"  # switched on for that pass only


def test_rollout_shape_and_normalisation(maps):
    layers, _, tokens, _ = maps.weights.shape
    assert maps.rollout.shape == (layers, tokens, tokens)
    torch.testing.assert_close(maps.rollout.sum(-1), torch.ones(layers, tokens))
    assert torch.all(maps.rollout >= 0) and torch.all(maps.rollout.triu(diagonal=1).abs() < 1e-7)


def test_rollout_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    weights = torch.stack([a, a])[:, None]  # [L=2, H=1, 2, 2]
    step = 0.5 * torch.eye(2) + 0.5 * a  # rows already sum to one
    rolled = attention_rollout(weights, residual=0.5)
    torch.testing.assert_close(rolled[0], step)
    torch.testing.assert_close(rolled[1], step @ step)
    with pytest.raises(ConfigError, match="residual"):
        attention_rollout(weights, residual=1.0)


def test_sink_scores_measure_weight_on_the_first_token(maps):
    expected = maps.weights[:, :, 1:, 0].mean(-1)
    torch.testing.assert_close(maps.sinks, expected)
    assert maps.sink_heads(0.0) and all(0 <= s <= 1 for _, _, s in maps.sink_heads(0.0))


def test_export_is_json_ready(maps):
    import json

    data = json.loads(json.dumps(maps.to_dict(layers=[0], heads=True)))
    assert list(data["layers"]) == ["0"] and len(data["layers"]["0"]["heads"]) == maps.weights.shape[1]


def test_logit_lens_last_layer_is_the_model_prediction(tiny_runtime):
    lens = logit_lens(tiny_runtime, TEXT, top_k=3)
    ids = tiny_runtime.encode(TEXT)
    logits = tiny_runtime.forward(ids).logits[-1]
    assert len(lens.layers) == tiny_runtime.info.num_layers + 1
    assert lens.layers[-1].top[0].id == int(logits.argmax())
    assert lens.layers[-1].watched_rank == 0
    assert lens.layers[-1].top[0].probability == pytest.approx(float(torch.softmax(logits, -1).max()), rel=1e-4)
    with pytest.raises(ConfigError, match="position"):
        logit_lens(tiny_runtime, TEXT, position=999)


def test_without_first_token_rescales_what_is_not_parked_on_bos():
    import torch

    from shieldkit.debugger import without_first_token

    matrix = torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.6, 0.1, 0.3]])
    rest = without_first_token(matrix)
    torch.testing.assert_close(rest, torch.tensor([[1.0, 0.0], [0.25, 0.75]]))
    torch.testing.assert_close(without_first_token(torch.tensor([[1.0, 0.0], [1.0, 0.0]])), torch.zeros(1, 1))
