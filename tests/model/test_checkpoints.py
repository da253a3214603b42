"""Any local Gemma (1, 2 or 3) in a Hugging Face folder loads through the same runtime."""

import pytest

from shieldkit.model import GemmaRuntime, GenerationConfig, ModelSettings
from shieldkit.model.tiny import build_tiny_model


@pytest.mark.parametrize("model_type", ["gemma", "gemma2", "gemma3_text"])
def test_hf_folder_of_each_gemma_generation_loads_and_generates(tmp_path, tiny_runtime, model_type):
    folder = tmp_path / model_type
    build_tiny_model(model_type).save_pretrained(folder)
    tiny_runtime.tokenizer.save_pretrained(folder)
    runtime = GemmaRuntime.load(ModelSettings.create(model=str(folder)), progress=False)
    assert runtime.info.source_kind == "hf"
    assert runtime.info.architecture == model_type
    assert runtime.info.cache_path is None
    result = runtime.generate("Hello", GenerationConfig(max_new_tokens=3))
    assert result.completion_tokens <= 3
    out = runtime.forward("Hello there", attentions=True, hidden_states=True)
    assert len(out.attentions) == runtime.info.num_layers


def test_folder_fingerprint_changes_with_the_weights(tmp_path, tiny_runtime):
    from shieldkit.model.source import resolve_source

    folder = tmp_path / "g"
    build_tiny_model("gemma3_text", seed=1).save_pretrained(folder)
    tiny_runtime.tokenizer.save_pretrained(folder)
    first = resolve_source(str(folder)).fingerprint
    build_tiny_model("gemma3_text", seed=2).save_pretrained(folder)
    assert resolve_source(str(folder)).fingerprint != first


def test_bfloat16_setting_is_applied(tiny_runtime):
    runtime = GemmaRuntime.load(ModelSettings.create(model="tiny-random", dtype="bfloat16"), progress=False)
    assert runtime.info.dtype == "bfloat16"
    assert next(runtime.model.parameters()).dtype.is_floating_point
    assert runtime.generate("Hi", GenerationConfig(max_new_tokens=2)).completion_tokens <= 2


def test_unavailable_device_is_a_clear_error():
    import torch

    from shieldkit.errors import ConfigError

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="no CUDA device"):
        GemmaRuntime.load(ModelSettings.create(model="tiny-random", device="cuda"), progress=False)


def test_multimodal_gemma3_folder_loads_its_language_model(tmp_path, tiny_runtime):
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    from shieldkit.model.tiny import _TINY_SHAPES

    config = Gemma3Config(
        text_config=dict(vocab_size=tiny_runtime.info.vocab_size, **_TINY_SHAPES["gemma3_text"]),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=28, patch_size=14),
        mm_tokens_per_image=4,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        full = Gemma3ForConditionalGeneration(config).eval()
    full.save_pretrained(tmp_path)
    tiny_runtime.tokenizer.save_pretrained(tmp_path)
    runtime = GemmaRuntime.load(ModelSettings.create(model=str(tmp_path)), progress=False)
    assert type(runtime.model).__name__ == "Gemma3ForCausalLM"  # text-only: the vision tower is not loaded
    out = runtime.forward("hi there")
    with torch.no_grad():
        expected = full(input_ids=out.input_ids[None]).logits[0]
    torch.testing.assert_close(out.logits, expected, atol=1e-5, rtol=1e-5)


def test_a_gguf_file_identical_to_the_embedded_one_shares_its_cache_key(tmp_path):
    from shieldkit.model.source import assemble_embedded, resolve_source

    path = assemble_embedded(tmp_path / "copy.gguf")
    source = resolve_source(str(path))
    assert source.kind == "gguf" and source.architecture == "gemma3"
    assert source.fingerprint == resolve_source("embedded").fingerprint


def test_a_folder_without_tokenizer_files_is_refused(tmp_path):
    from shieldkit.errors import ModelSourceError

    build_tiny_model("gemma3_text").save_pretrained(tmp_path)  # transformers would make a 5-token stand-in
    with pytest.raises(ModelSourceError, match=r"no tokenizer \(tokenizer.json or tokenizer.model\)"):
        GemmaRuntime.load(ModelSettings.create(model=str(tmp_path)), progress=False)


def test_truncated_weights_are_an_error_naming_the_folder(tmp_path, tiny_runtime):
    from shieldkit.errors import ModelSourceError

    build_tiny_model("gemma3_text").save_pretrained(tmp_path)
    tiny_runtime.tokenizer.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelSourceError, match=f"{tmp_path}: transformers could not load this checkpoint"):
        GemmaRuntime.load(ModelSettings.create(model=str(tmp_path)), progress=False)
