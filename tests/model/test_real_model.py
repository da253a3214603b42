"""Integration tests on the real embedded Gemma 3 270M (converted into the user cache on first use)."""

import shutil

import pytest
import torch

from shieldkit.model import GemmaRuntime, GenerationConfig, ModelSettings

pytestmark = pytest.mark.real_model
PROMPT = "The capital of France is"


def test_embedded_model_is_gemma3_270m(real_runtime):
    info = real_runtime.info
    assert info.architecture == "gemma3"
    assert 260_000_000 < info.parameters < 280_000_000
    assert info.num_layers == 18 and info.vocab_size == 262_144
    assert info.cache_path and info.cache_event in ("hit", "built") or info.cache_event.startswith("rebuilt")


def test_second_load_uses_the_cache(real_runtime):
    again = GemmaRuntime.load(ModelSettings.create(model="embedded"), progress=False)
    assert again.info.cache_event == "hit"
    assert again.info.cache_path == real_runtime.info.cache_path


def test_greedy_decoding_is_deterministic(real_runtime):
    config = GenerationConfig(max_new_tokens=16)
    first = real_runtime.generate(PROMPT, config)
    assert first.text == real_runtime.generate(PROMPT, config).text
    assert len(first.text.split()) >= 3


def test_streaming_equals_non_streaming(real_runtime):
    config = GenerationConfig(max_new_tokens=24, temperature=0.8, top_p=0.95, seed=11)
    stream = real_runtime.stream([{"role": "user", "content": "Name three colours."}], config)
    assert "".join(stream) == stream.result.text
    assert stream.result.text == real_runtime.generate([{"role": "user", "content": "Name three colours."}], config).text


def test_end_of_turn_finishes_a_chat_reply(real_runtime):
    config = GenerationConfig(max_new_tokens=48)
    result = real_runtime.generate([{"role": "user", "content": "Say hello."}], config)
    assert "<end_of_turn>" not in result.text
    assert result.finish_reason in ("stop", "length")


def test_logits_match_between_the_gguf_and_the_cache(real_runtime):
    direct = GemmaRuntime.load(ModelSettings.create(model="embedded"), use_cache=False, progress=False)
    assert direct.info.cache_event == "none"
    torch.testing.assert_close(direct.forward(PROMPT).logits, real_runtime.forward(PROMPT).logits, atol=0, rtol=0)


def test_corrupt_cache_is_detected_and_rebuilt(real_runtime, tmp_path):
    source_root = real_runtime.info.cache_path.rsplit("/model", 1)[0]
    copy_root = tmp_path / "models" / real_runtime.info.fingerprint[:16]
    shutil.copytree(source_root, copy_root, ignore=shutil.ignore_patterns(".*"))
    weights = copy_root / "model" / "model.safetensors"
    with weights.open("r+b") as handle:  # flip bytes in the middle of the tensor data
        handle.seek(weights.stat().st_size // 2)
        handle.write(b"\xff" * 4096)
    rebuilt = GemmaRuntime.load(ModelSettings.create(model="embedded", cache_dir=tmp_path), progress=False)
    assert rebuilt.info.cache_event.startswith("rebuilt") and "checksum" in rebuilt.info.cache_event
    torch.testing.assert_close(rebuilt.forward(PROMPT).logits, real_runtime.forward(PROMPT).logits, atol=0, rtol=0)


def test_bfloat16_agrees_with_float32_on_the_next_token(real_runtime):
    bf16 = GemmaRuntime.load(ModelSettings.create(model="embedded", dtype="bfloat16"), progress=False)
    assert bf16.info.dtype == "bfloat16"
    ids = real_runtime.encode(PROMPT)
    top32 = torch.topk(real_runtime.forward(ids).logits[-1], 5).indices
    assert int(torch.argmax(bf16.forward(ids).logits[-1])) in top32.tolist()


def test_the_embedded_base_model_chats_through_a_transcript(real_runtime):
    """No chat template in the GGUF: a transcript, an on-topic answer, cut before the next turn."""
    assert real_runtime.info.chat_format == "transcript"
    result = real_runtime.generate([{"role": "user", "content": "What is the capital of France?"}],
                                   GenerationConfig(max_new_tokens=48))
    assert "Paris" in result.text and "User:" not in result.text and result.text == result.text.strip()


def test_int8_head_decoding_keeps_the_reference_greedy_text(real_runtime):
    """Only the output projection in int8, its shortlist re-scored in float32: the reference's greedy text."""
    config = GenerationConfig(max_new_tokens=32)
    reference = GemmaRuntime(real_runtime.model, real_runtime.tokenizer, real_runtime.info, decode="reference")
    int8_head = GemmaRuntime(real_runtime.model, real_runtime.tokenizer, real_runtime.info, decode="int8-head")
    for prompt in (PROMPT, "Once upon a time, in a small village by the sea,"):
        assert int8_head.generate(prompt, config).text == reference.generate(prompt, config).text
