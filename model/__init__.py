"""The Gemma runtime.

    from shieldkit.model import GemmaRuntime, GenerationConfig

    runtime = GemmaRuntime.load()  # embedded Gemma 3 270M, converted once into the cache
    print(runtime.generate("The capital of France is", GenerationConfig(max_new_tokens=8)).text)

Names are imported lazily, so ``import shieldkit.model`` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shieldkit.lazy import lazy_exports

_EXPORTS = {
    "GemmaRuntime": "shieldkit.model.runtime",
    "ModelInfo": "shieldkit.model.runtime",
    "load_runtime": "shieldkit.model.runtime",
    "ModelSettings": "shieldkit.model.settings",
    "EMBEDDED": "shieldkit.model.settings",
    "TINY": "shieldkit.model.settings",
    "GenerationConfig": "shieldkit.model.generation",
    "GenerationResult": "shieldkit.model.generation",
    "GenerationStream": "shieldkit.model.generation",
    "render_chat": "shieldkit.model.chat",
    "ForwardOutput": "shieldkit.model.internals",
    "EmbeddingGradients": "shieldkit.model.internals",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from shieldkit.model.chat import render_chat
    from shieldkit.model.generation import GenerationConfig, GenerationResult, GenerationStream
    from shieldkit.model.internals import EmbeddingGradients, ForwardOutput
    from shieldkit.model.runtime import GemmaRuntime, ModelInfo, load_runtime
    from shieldkit.model.settings import EMBEDDED, TINY, ModelSettings


__getattr__ = lazy_exports(__name__, _EXPORTS)
