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
