"""The llama-cpp decoding step (shieldkit.model.llama_cpp) on the embedded GGUF: how the mode is chosen, that its
logits follow the float model, that a context that outgrows itself replays exactly, and that generations sharing
the step interleave without touching each other's KV cache."""

import gc

import pytest
import torch

from shieldkit.errors import ConfigError, ModelSourceError
from shieldkit.model import GemmaRuntime, GenerationConfig, llama_cpp
from shieldkit.model.decoding import greedy_ids, resolve_mode, wants_gguf

pytestmark = pytest.mark.real_model
PROMPTS = ("The capital of France is", "Once upon a time, in a small village by the sea,")


@pytest.fixture(scope="module")
def step(real_runtime):
    """A llama-cpp step on the GGUF the real runtime was loaded from (the conftest runtime resolves auto)."""
    return llama_cpp.LlamaCppStep(real_runtime.gguf, vocab_size=real_runtime.info.vocab_size, threads=2)


def test_auto_picks_llama_cpp_only_with_the_package_and_a_gguf(tiny_runtime, real_runtime, monkeypatch):
    assert real_runtime.gguf is not None and real_runtime.gguf.suffix == ".gguf"
    assert real_runtime.info.decode == "llama-cpp"
    assert tiny_runtime.info.decode == "int8-head"  # no GGUF behind the tiny random model
    assert resolve_mode("auto", tiny_runtime.model, None) == "int8-head"
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert wants_gguf("auto", cpu) and wants_gguf("llama-cpp", gpu) and not wants_gguf("auto", gpu)
    assert not wants_gguf("int8-head", cpu)  # the loader only looks for (and checksums) a GGUF it may use
    monkeypatch.setattr(llama_cpp, "installed", lambda: False)
    assert resolve_mode("auto", real_runtime.model, real_runtime.gguf) == "int8-head"
    assert not wants_gguf("auto", cpu)


def test_llama_cpp_that_cannot_run_is_refused_naming_the_setting(tiny_runtime, real_runtime, monkeypatch):
    with pytest.raises(ConfigError, match=r"SHIELDKIT_DECODE.*'llama-cpp' needs a GGUF model"):
        resolve_mode("llama-cpp", tiny_runtime.model, None)
    monkeypatch.setattr(llama_cpp, "installed", lambda: False)
    with pytest.raises(ConfigError, match=r"SHIELDKIT_DECODE.*pip install 'shieldkit\[llama-cpp\]'"):
        resolve_mode("llama-cpp", real_runtime.model, real_runtime.gguf)


def test_a_gguf_of_another_vocabulary_is_refused(real_runtime):
    with pytest.raises(ModelSourceError, match="needs the GGUF the model was loaded from"):
        llama_cpp.LlamaCppStep(real_runtime.gguf, vocab_size=1000, threads=1)


def test_logits_follow_the_float_model(real_runtime, step):
    """Same weights, 8-bit activations: the first step's logits correlate above 0.99 with the float model's and
    agree on the top token (bench/runtime.py measures how many greedy tokens stay the same)."""
    for prompt in PROMPTS:
        ids = real_runtime.encode(prompt)
        reference = real_runtime.forward(ids).logits[-1].float()
        with torch.inference_mode():
            logits, _ = step(ids[None], None)
        assert logits.shape == reference.shape and logits.dtype == torch.float32
        assert torch.corrcoef(torch.stack([reference, logits]))[0, 1] > 0.99, prompt
        assert int(logits.argmax()) == int(reference.argmax()), prompt


def test_a_context_that_grows_replays_what_it_had_read(real_runtime, step, monkeypatch):
    """HEADROOM of 3 forces several regrowths, each replaying the tokens so far into a bigger context in one batch.
    Fed the same tokens, every step's logits follow those of a context that never grew (a batched replay rounds
    differently from one-token steps, so near-ties can pick differently: compared with a tolerance)."""
    ids = real_runtime.encode(PROMPTS[1])
    roomy = greedy_ids(step, ids, 24)
    inputs = ids[None]
    with torch.inference_mode():
        first, roomy_cache = step(inputs, None)
        monkeypatch.setattr(llama_cpp, "HEADROOM", 3)
        grown, grown_cache = step(inputs, None)
        for token in roomy:
            assert torch.corrcoef(torch.stack([first, grown]))[0, 1] > 0.99
            inputs = torch.tensor([[token]])
            first, roomy_cache = step(inputs, roomy_cache)
            grown, grown_cache = step(inputs, grown_cache)
    assert grown_cache.tokens == roomy_cache.tokens and len(grown_cache.tokens) == len(ids) + len(roomy)
    assert grown_cache._capacity < roomy_cache._capacity  # it started small and grew (3 tokens of headroom at a time)


def test_interleaved_generations_keep_their_own_cache(real_runtime, step):
    alone = {prompt: greedy_ids(step, real_runtime.encode(prompt), 12) for prompt in PROMPTS}
    caches, picks = {p: None for p in PROMPTS}, {p: [] for p in PROMPTS}
    inputs = {p: real_runtime.encode(p)[None] for p in PROMPTS}
    with torch.inference_mode():
        for _ in range(12):
            for prompt in PROMPTS:  # one step of each generation in turn, as the proxy's workers interleave
                logits, caches[prompt] = step(inputs[prompt], caches[prompt])
                picks[prompt].append(int(logits.argmax()))
                inputs[prompt] = torch.tensor([[picks[prompt][-1]]])
    assert picks == alone


def test_a_finished_generation_frees_its_context(real_runtime, step):
    _, cache = step(real_runtime.encode("Hello")[None], None)
    freed = cache._free
    assert freed.alive
    del cache
    gc.collect()
    assert not freed.alive


def test_the_default_runtime_chats_on_llama_cpp(real_runtime):
    """The embedded model's default decoding, through the transcript: an on-topic answer, stopped at the turn."""
    result = real_runtime.generate([{"role": "user", "content": "What is the capital of France?"}],
                                   GenerationConfig(max_new_tokens=48))
    assert "Paris" in result.text and "User:" not in result.text
    again = GemmaRuntime(real_runtime.model, real_runtime.tokenizer, real_runtime.info, decode="llama-cpp",
                         gguf=real_runtime.gguf)
    assert again.generate(PROMPTS[0], GenerationConfig(max_new_tokens=16)).text == \
        real_runtime.generate(PROMPTS[0], GenerationConfig(max_new_tokens=16)).text
