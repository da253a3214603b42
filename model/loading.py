"""Turning a ModelSource into weights and a tokenizer in memory: device and dtype choice, cache use, progress."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from shieldkit.errors import ConfigError, ModelSourceError, ShieldkitError
from shieldkit.model import cache as model_cache
from shieldkit.model.source import ModelSource, resolve_source
from shieldkit.model.settings import EMBEDDED
from shieldkit.progress import bar

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class LoadedWeights:
    model: Any  # a transformers causal LM (Gemma*ForCausalLM), float32 on the CPU
    tokenizer: Any
    cache_path: Path | None
    cache_event: str


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' (SHIELDKIT_DEVICE) was asked for, but torch sees no CUDA device here")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' (SHIELDKIT_DEVICE) was asked for, but torch sees no Apple MPS device here")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        fast_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if fast_bf16 else torch.float32
    return _DTYPES[name]


def apply_threads(threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)


def load_weights(source: ModelSource, cache_dir: Path, *, use_cache: bool, progress: bool) -> LoadedWeights:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is local; never reach for a hub
    loader = _LOADERS[source.kind]
    return loader(source, Path(cache_dir), use_cache=use_cache, progress=progress)


def gguf_file(source: ModelSource, cache_dir: Path) -> Path | None:
    """The GGUF file behind ``source`` (the embedded one assembled into the cache), or None for other sources."""
    if source.kind == "embedded":
        return model_cache.ensure_gguf(model_cache.cache_entry(Path(cache_dir), source))
    return source.path if source.kind == "gguf" else None


def _load_gguf(source: ModelSource, cache_dir: Path, *, use_cache: bool, progress: bool) -> LoadedWeights:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    entry = model_cache.cache_entry(cache_dir, source)
    stages = model_cache.TOKENIZER_STAGES * _needs_build(entry.tokenizer_dir, source)
    stages += model_cache.MODEL_STAGES * (use_cache and _needs_build(entry.model_dir, source))
    with _StageBar(progress, f"first start: converting {source.name}", stages) as stage_bar, \
            _unreadable(source.path or entry.root):
        tokenizer_part = model_cache.ensure_tokenizer(entry, stage_bar.advance)
        if use_cache:
            model_part = model_cache.ensure_model(entry, stage_bar.advance)
    with _quiet_transformers(), _unreadable(source.path or entry.root):
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_part.path))
        if use_cache:
            model = AutoModelForCausalLM.from_pretrained(str(model_part.path), dtype=torch.float32)
            return LoadedWeights(model, tokenizer, model_part.path, model_part.event)
    with model_cache.source_gguf(entry, lambda stage: None) as gguf, _unreadable(gguf):
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    return LoadedWeights(model, tokenizer, None, "none")


def _needs_build(part: Path, source: ModelSource) -> bool:
    """For the progress bar's stages only: sizes, not checksums (``ensure_*`` checks the part once, in full)."""
    return model_cache.verify_part(part, source, checksums=False) is not None


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No per-tensor 'Loading weights' bar for a load that takes a second anyway."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_hf(source: ModelSource, cache_dir: Path, *, use_cache: bool, progress: bool) -> LoadedWeights:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = source.path
    with _quiet_transformers():
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        except Exception as exc:  # noqa: BLE001 -- the tokenizers library raises plain Exception on a corrupt file
            raise ModelSourceError(f"{folder} has no usable tokenizer (tokenizer.json or tokenizer.model): {exc}") from None
        with _unreadable(folder):
            if source.architecture == "gemma3":
                model = _gemma3_text_model(folder)
            else:
                model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    vocab = getattr(model.config, "vocab_size", None) or getattr(getattr(model.config, "text_config", None), "vocab_size", 0)
    if len(tokenizer) < vocab // 2:  # transformers builds a 5-token stand-in when a folder has no tokenizer files
        raise ModelSourceError(f"{folder}: the tokenizer has {len(tokenizer)} tokens for a model of {vocab}; the "
                               "folder's tokenizer files (tokenizer.json or tokenizer.model) are missing or wrong")
    return LoadedWeights(model, tokenizer, None, "none")


@contextlib.contextmanager
def _unreadable(path: Path) -> Iterator[None]:
    """A checkpoint transformers cannot read (truncated weights, a missing shard, a config that does not fit the
    tensors, an unsupported GGUF) is a ModelSourceError naming it, not a traceback from inside transformers."""
    try:
        yield
    except ShieldkitError:
        raise
    except Exception as exc:  # noqa: BLE001 -- transformers, safetensors and gguf raise many unrelated types
        raise ModelSourceError(f"{path}: transformers could not load this checkpoint ({type(exc).__name__}: {exc})") from None


def _gemma3_text_model(folder: Path):
    """The text-only Gemma3ForCausalLM inside a multimodal Gemma 3 folder (4B and up).

    transformers loads the whole image-text model; its language model and output head are moved into a plain
    causal-LM shell so the rest of the toolkit sees the same module layout as every other Gemma, and the vision
    tower is dropped.
    """
    from transformers import AutoModelForCausalLM, Gemma3ForCausalLM

    full = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    language_model = getattr(full.model, "language_model", None)
    if language_model is None:
        raise ModelSourceError(f"{folder}: a gemma3 checkpoint without a language model ({type(full).__name__})")
    with torch.device("meta"):
        model = Gemma3ForCausalLM(language_model.config)
    model.model = language_model
    model.lm_head = full.lm_head
    model.generation_config = full.generation_config
    return model.eval()


def _load_tiny(source: ModelSource, cache_dir: Path, *, use_cache: bool, progress: bool) -> LoadedWeights:
    from transformers import AutoTokenizer

    from shieldkit.model.tiny import build_tiny_model

    embedded_source = resolve_source(EMBEDDED)
    embedded = model_cache.cache_entry(cache_dir, embedded_source)
    stages = model_cache.TOKENIZER_STAGES * _needs_build(embedded.tokenizer_dir, embedded_source)
    with _StageBar(progress, "first start: converting the Gemma tokenizer", stages) as stage_bar:
        tokenizer_part = model_cache.ensure_tokenizer(embedded, stage_bar.advance)
    with _quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_part.path))
    return LoadedWeights(build_tiny_model(), tokenizer, None, "none")


_LOADERS = {"embedded": _load_gguf, "gguf": _load_gguf, "hf": _load_hf, "tiny": _load_tiny}


class _StageBar:
    """A progress bar over named stages; it appears only if there is work to do (a cache build)."""

    def __init__(self, enabled: bool, title: str, total: int) -> None:
        self.enabled = enabled and total > 0
        self.title = title
        self.total = total
        self._bar = None

    def __enter__(self) -> _StageBar:
        return self

    def advance(self, stage: str) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = bar(total=self.total, desc=self.title, unit="stage")
        else:
            self._bar.update(1)
        self._bar.set_postfix_str(stage)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix_str("done")
            self._bar.close()
