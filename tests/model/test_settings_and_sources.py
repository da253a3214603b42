import json

import pytest

from shieldkit.errors import ConfigError, ModelSourceError
from shieldkit.model.settings import ModelSettings, default_cache_dir
from shieldkit.model.source import read_gguf_architecture, resolve_source


def test_defaults_are_the_embedded_model_in_float32(monkeypatch):
    monkeypatch.delenv("SHIELDKIT_MODEL", raising=False)
    settings = ModelSettings.create()
    assert settings.model == "embedded"
    assert settings.dtype == "float32"
    assert settings.resolved_cache_dir == default_cache_dir()


def test_environment_overrides_and_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SHIELDKIT_DTYPE", "bfloat16")
    monkeypatch.setenv("SHIELDKIT_CACHE_DIR", str(tmp_path))
    settings = ModelSettings.create()
    assert settings.dtype == "bfloat16"
    assert settings.resolved_cache_dir == tmp_path


def test_xdg_cache_home_is_respected(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "shieldkit"


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("dtype", "float64", "SHIELDKIT_DTYPE"),
        ("device", "tpu", "SHIELDKIT_DEVICE"),
        ("threads", 0, "SHIELDKIT_THREADS"),
        ("model", "  ", "SHIELDKIT_MODEL"),
    ],
)
def test_bad_settings_name_the_field(field, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        ModelSettings.create(**{field: value})


def test_unknown_setting_is_rejected():
    with pytest.raises(ConfigError, match="colour"):
        ModelSettings.create(colour="blue")


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelSourceError, match="does not exist"):
        resolve_source(str(tmp_path / "nope"))


def test_folder_without_config_lists_what_it_found(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelSourceError, match=r"no config.json \(found: weights.bin\)"):
        resolve_source(str(tmp_path))


def test_non_gemma_folder_names_its_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ModelSourceError, match="model_type 'llama'"):
        resolve_source(str(tmp_path))


def test_gemma_folder_without_weights_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gemma2"}))
    with pytest.raises(ModelSourceError, match="no weight files"):
        resolve_source(str(tmp_path))
    (tmp_path / "training_args.bin").write_bytes(b"x")  # a Trainer checkpoint's settings are not weights
    with pytest.raises(ModelSourceError, match="no weight files"):
        resolve_source(str(tmp_path))


def test_gemma_1_gguf_says_to_use_the_folder(tmp_path):
    path = tmp_path / "g1.gguf"
    _write_gguf(path, "gemma")
    with pytest.raises(ModelSourceError, match="Gemma 1 GGUF, which transformers cannot convert"):
        resolve_source(str(path))


def test_file_that_is_not_gguf(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(ModelSourceError, match="not b'GGUF'"):
        resolve_source(str(path))


def _write_gguf(path, architecture):
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_uint32("some.count", 3)
    writer.add_array("some.list", ["a", "bb", "ccc"])
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "llama.gguf"
    _write_gguf(path, "llama")
    assert read_gguf_architecture(path) == "llama"
    with pytest.raises(ModelSourceError, match="architecture 'llama'"):
        resolve_source(str(path))


def test_gemma_gguf_is_accepted_and_fingerprinted(tmp_path):
    path = tmp_path / "g.gguf"
    _write_gguf(path, "gemma3")
    source = resolve_source(str(path))
    assert source.kind == "gguf" and source.architecture == "gemma3"
    assert len(source.fingerprint) == 64


def test_truncated_gguf_is_a_clear_error(tmp_path):
    path = tmp_path / "cut.gguf"
    _write_gguf(path, "gemma3")
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(ModelSourceError, match="truncated|not a readable"):
        resolve_source(str(path))


def test_embedded_source_needs_no_file_until_converted():
    source = resolve_source("embedded")
    assert source.kind == "embedded" and source.needs_conversion
    assert source.fingerprint == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
