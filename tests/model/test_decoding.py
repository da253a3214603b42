"""The decoding paths (shieldkit.model.decoding) on the tiny random Gemma: agreement with the float reference,
and that the int8 copy never leaks into the float model the debugger and classifiers use."""

import pytest
import torch

from shieldkit.errors import ConfigError
from shieldkit.model import GemmaRuntime, GenerationConfig, ModelSettings
from shieldkit.model.decoding import Int8Head, float_greedy_mode, greedy_ids, resolve_mode

PROMPTS = ["Hello", "Once upon a time", "The capital of", "def f(x):", "Tea is", "Write a haiku about the sea."]


def greedy(runtime, prompt, tokens=32):
    return greedy_ids(runtime.decode_step(), runtime.encode(prompt), tokens)


@pytest.fixture(scope="module")
def modes(tiny_runtime):
    """One runtime per decode mode, all on the same float model."""
    return {mode: GemmaRuntime(tiny_runtime.model, tiny_runtime.tokenizer, tiny_runtime.info, decode=mode)
            for mode in ("reference", "int8-head", "int8")}


def test_auto_is_int8_head_for_a_float32_cpu_model_and_reference_otherwise(tiny_runtime, modes):
    assert tiny_runtime.info.decode == "int8-head"
    assert resolve_mode("auto", tiny_runtime.model) == "int8-head"
    assert resolve_mode("auto", torch.nn.Linear(2, 2).double()) == "reference"
    assert {mode: runtime.info.decode for mode, runtime in modes.items()} == {m: m for m in modes}


def test_int8_on_a_model_it_cannot_run_is_refused_naming_the_setting():
    with pytest.raises(ConfigError, match=r"SHIELDKIT_DECODE.*'int8'.*float32 model on the CPU.*float64"):
        resolve_mode("int8", torch.nn.Linear(2, 2).double())
    with pytest.raises(ConfigError, match="decode"):
        ModelSettings.create(model="tiny-random", decode="fast")


def test_int8_head_greedy_tokens_equal_the_reference(modes):
    """The head's shortlist is re-scored in float32, so greedy picks are the reference's (here: all of them)."""
    for prompt in PROMPTS:
        assert greedy(modes["int8-head"], prompt) == greedy(modes["reference"], prompt), prompt


def test_int8_layers_stay_close_to_the_reference(modes):
    """int8 decoder layers move the hidden states a little. Tolerance on the tiny model's first step: the logits
    correlate above 0.99 and the reference's pick is among int8's top 5. (Its random weights leave far smaller
    margins between candidates than a trained model, so its greedy text itself does drift; bench/runtime.py
    measures the drift on the real model.)"""
    for prompt in PROMPTS:
        ids = modes["reference"].encode(prompt)[None]
        with torch.inference_mode():
            reference, _ = modes["reference"].decode_step()(ids, None)
            int8, _ = modes["int8"].decode_step()(ids, None)
        correlation = torch.corrcoef(torch.stack([reference, int8]))[0, 1]
        assert correlation > 0.99, (prompt, float(correlation))
        assert int(reference.argmax()) in torch.topk(int8, 5).indices.tolist(), prompt


def test_int8_head_rescores_its_shortlist_exactly():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(5000, 64), requires_grad=False)  # [V, D]
    head = Int8Head(weight, shortlist=16, softcap=None)
    for _ in range(20):
        hidden = torch.randn(64)
        logits = head(hidden)
        exact = weight @ hidden
        top = torch.topk(head.linear(hidden[None])[0], 16).indices  # the head's int8 shortlist
        torch.testing.assert_close(logits[top], exact[top])
        assert int(logits.argmax()) == int(exact.argmax())
        assert (logits - exact).abs().max() < 0.05 * exact.abs().max()  # the rest: int8 approximations


def test_soft_capping_is_applied_like_the_models_own_head():
    torch.manual_seed(1)
    weight = torch.nn.Parameter(torch.randn(300, 32) * 5, requires_grad=False)
    hidden = torch.randn(32)
    logits = Int8Head(weight, shortlist=300, softcap=30.0)(hidden)  # shortlist = V: every row exact
    torch.testing.assert_close(logits, torch.tanh(weight @ hidden / 30.0) * 30.0)


def test_the_float_model_is_untouched_and_keeps_its_gradients(tiny_runtime, modes):
    before = tiny_runtime.forward("The weather today").logits
    modes["int8"].decode_step()
    assert all(type(m) is not torch.nn.Linear or m.weight.dtype == torch.float32 for m in tiny_runtime.model.modules())
    assert sum(isinstance(m, torch.nn.Linear) for m in tiny_runtime.model.modules()) > 0
    torch.testing.assert_close(tiny_runtime.forward("The weather today").logits, before, rtol=0, atol=0)
    ids = tiny_runtime.encode("Tea is")
    grads = modes["int8"].embedding_gradients(ids, lambda logits: logits[-1].max())
    assert grads.gradients.shape == (len(ids), tiny_runtime.info.hidden_size) and grads.gradients.abs().sum() > 0


def test_float_greedy_generation_is_the_float_models_own_text(modes):
    """The debugger explains the float model, so it asks for its greedy text even where the runtime decodes
    with int8 layers (or llama.cpp): the step it gets keeps the reference's picks."""
    assert float_greedy_mode("int8", modes["int8"].model) == "int8-head"
    assert float_greedy_mode("llama-cpp", torch.nn.Linear(2, 2).double()) == "reference"
    assert float_greedy_mode("reference", modes["int8"].model) == "reference"
    config = GenerationConfig(max_new_tokens=24)
    for prompt in PROMPTS:
        assert modes["int8"].generate(prompt, config, float_greedy=True).text == \
            modes["reference"].generate(prompt, config).text, prompt
    assert modes["int8"].decode_step(float_greedy=True) is modes["int8"].decode_step(float_greedy=True)
    assert modes["int8"].decode_step(float_greedy=True) is not modes["int8"].decode_step()


def test_the_decoding_copy_is_built_once(modes):
    assert modes["int8"].decode_step() is modes["int8"].decode_step()


@pytest.mark.parametrize("mode", ["int8-head", "int8"])
def test_streaming_equals_non_streaming_on_every_path(modes, mode):
    config = GenerationConfig(max_new_tokens=16, temperature=0.9, seed=5)
    stream = modes[mode].stream("Tell me", config)
    assert "".join(stream) == stream.result.text == modes[mode].generate("Tell me", config).text
