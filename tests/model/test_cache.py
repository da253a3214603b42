"""The conversion cache's integrity rules, on small real files (the real model's rebuild is in test_real_model)."""

import threading

import pytest

from shieldkit.model import cache
from shieldkit.model.source import ModelSource

SOURCE = ModelSource("gguf", "test source", None, "gemma3", "ab" * 32)


def _builder(calls):
    def build(out):
        calls.append(out.name)
        out.mkdir()
        (out / "weights.bin").write_bytes(bytes(range(256)) * 64)
        (out / "config.json").write_text("{}")

    return build


def _ensure(part, calls):
    return cache._ensure_part(part, _builder(calls), SOURCE, lambda stage: None)


def test_build_then_hit(tmp_path):
    calls = []
    part = tmp_path / "model"
    assert _ensure(part, calls).event == "built"
    assert _ensure(part, calls).event == "hit"
    assert len(calls) == 1
    assert cache.verify_part(part, SOURCE) is None


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda part: (part / "weights.bin").write_bytes(b"\0" * 16384), "fails its checksum"),
        (lambda part: (part / "weights.bin").write_bytes(b"\0" * 10), "bytes, expected"),
        (lambda part: (part / "config.json").unlink(), "config.json is missing"),
        (lambda part: (part / cache.MANIFEST).unlink(), "no manifest"),
        (lambda part: (part / cache.MANIFEST).write_text("{not json"), "unreadable manifest"),
    ],
)
def test_damaged_cache_is_rebuilt(tmp_path, damage, reason):
    calls = []
    part = tmp_path / "model"
    _ensure(part, calls)
    damage(part)
    status = _ensure(part, calls)
    assert status.event.startswith("rebuilt") and reason in status.event
    assert cache.verify_part(part, SOURCE) is None
    assert len(calls) == 2


def test_cache_of_another_source_is_not_trusted(tmp_path):
    part = tmp_path / "model"
    _ensure(part, [])
    other = ModelSource("gguf", "other", None, "gemma3", "cd" * 32)
    assert "another source" in cache.verify_part(part, other)


def test_failed_build_leaves_nothing_behind(tmp_path):
    part = tmp_path / "model"

    def explode(out):
        out.mkdir()
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        cache._ensure_part(part, explode, SOURCE, lambda stage: None)
    assert not part.exists()
    assert not list(tmp_path.glob("model.partial-*"))


def test_concurrent_loads_build_once(tmp_path):
    calls = []
    part = tmp_path / "model"
    threads = [threading.Thread(target=_ensure, args=(part, calls)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert cache.verify_part(part, SOURCE) is None


def test_cache_is_keyed_by_the_source_fingerprint(tmp_path):
    entry = cache.cache_entry(tmp_path, SOURCE)
    assert entry.root == tmp_path / "models" / SOURCE.fingerprint[:16]


def test_a_killed_build_leaves_no_partial_folder_for_good(tmp_path):
    part = tmp_path / "model"
    stale = tmp_path / "model.partial-999999"  # what a build killed mid-way (out of memory) leaves
    stale.mkdir()
    (stale / "weights.bin").write_bytes(b"x" * 1000)
    _ensure(part, [])
    assert not stale.exists() and cache.verify_part(part, SOURCE) is None


def test_an_unwritable_cache_is_a_clear_error(tmp_path):
    from shieldkit.errors import ConfigError

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(ConfigError, match="cannot build the model cache.*SHIELDKIT_CACHE_DIR"):
        _ensure(blocked / "models" / "model", [])


def test_a_quick_look_reads_sizes_not_checksums(tmp_path):
    part = tmp_path / "model"
    _ensure(part, [])
    (part / "weights.bin").write_bytes(b"\0" * 16384)  # same size, other bytes
    assert cache.verify_part(part, SOURCE, checksums=False) is None
    assert "fails its checksum" in cache.verify_part(part, SOURCE)
