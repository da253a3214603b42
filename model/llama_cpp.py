"""The ``llama-cpp`` decoding step: llama.cpp (the optional ``llama-cpp-python`` package) reads the GGUF itself.

The float model reads 1 GB of float32 weights for every token, and the int8 paths read a quarter of that. llama.cpp
multiplies the GGUF's own quantized blocks (Q4_K_M for the embedded Gemma 3 270M, about 250 MB), with the
activations quantized to 8 bits, in kernels written for that. bench/runtime.py measures it beside the other
modes, and BENCHMARKS.md records the numbers. The weights are the very numbers the float model was dequantized
from, but the 8-bit activations mean greedy text can part from the float model's after some tokens;
bench/runtime.py also measures how soon.

This is a kept library in place of our own kernels. Only the forward pass runs here. Tokens in, logits out:
tokenizing, sampling, stop strings and streaming stay in ``shieldkit.model.generation``, so a ``GenerationConfig``
means the same thing on every path. The debugger and the classifiers never come here.

Each generation gets its own llama.cpp context (its KV cache), created on its first step (about 10 ms). Its size
is the prompt plus ``HEADROOM`` tokens. When the generation outgrows it, a context twice the size replays the
tokens so far. The context is freed when the generation's cache object is dropped. All contexts share one
memory-mapped model, so concurrent generations interleave step by step as they do on the float model.
"""

from __future__ import annotations

import ctypes
import importlib.util
import weakref
from pathlib import Path

import numpy as np
import torch

from shieldkit.errors import ConfigError, ModelSourceError
from shieldkit.model.quantize import has_amx

HEADROOM = 512  # tokens a new context holds beyond its prompt before it must grow
PHYSICAL_BATCH = 256  # llama.cpp's n_ubatch: prompt tokens per kernel call (sets its compute buffer, ~20 MB)
INSTALL_HINT = "install the optional extra: pip install 'shieldkit[llama-cpp]'"


def installed() -> bool:
    """Whether ``llama-cpp-python`` can be imported (it is an optional extra)."""
    return importlib.util.find_spec("llama_cpp") is not None


def _bindings():
    try:
        import llama_cpp
    except (ImportError, OSError, RuntimeError) as exc:  # present but broken (e.g. built for another CPU): say so, never fall back silently
        raise ConfigError(f"decode (SHIELDKIT_DECODE) 'llama-cpp' could not import llama_cpp ({exc}); {INSTALL_HINT}") from exc
    return llama_cpp


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _silent(level, text, user_data):  # llama.cpp's own log lines (load and graph reports) are not ours to print
    return None


class LlamaCppStep:
    """step_ids [1, T] and a cache (None on the first step) -> (logits [V] float32 on the CPU, the cache)."""

    mode = "llama-cpp"

    def __init__(self, gguf: Path, *, vocab_size: int, threads: int) -> None:
        self._lib = lib = _bindings()
        lib.llama_log_set(_silent, None)
        lib.llama_backend_init()
        params = lib.llama_model_default_params()
        params.n_gpu_layers = 0
        # ggml's AMX buffer type (weights repacked for AMX tiles, chosen on CPUs that have them) crashes the
        # process in ggml_backend_amx_mul_mat at the first decode of this model's Q4_K_M tensors (llama-cpp-python
        # 0.3.36; llama.cpp#20824; seen here on a Sapphire-Rapids-class Xeon). Where the CPU has AMX the extra
        # buffer types are off and the plain CPU kernels run; elsewhere they stay on (AVX2 repacking).
        params.use_extra_bufts = not has_amx()
        self._model = lib.llama_model_load_from_file(str(gguf).encode(), params)
        if not self._model:
            raise ModelSourceError(f"llama.cpp could not load {gguf} (decode 'llama-cpp'); set SHIELDKIT_DECODE=int8-head")
        weakref.finalize(self, lib.llama_model_free, self._model)
        self.vocab_size = lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(self._model))
        if self.vocab_size != vocab_size:
            raise ModelSourceError(f"llama.cpp reads {self.vocab_size} tokens in {gguf.name} but the model has "
                                   f"{vocab_size}; decode 'llama-cpp' needs the GGUF the model was loaded from")
        self.threads = threads
        self.train_context = lib.llama_model_n_ctx_train(self._model)

    def __call__(self, step_ids: torch.Tensor, cache: _Sequence | None) -> tuple[torch.Tensor, _Sequence]:
        ids = [int(i) for i in step_ids[0]]
        if cache is None:
            cache = _Sequence(self)
        return cache.extend(ids), cache

    def context(self, tokens: int):
        """A new llama.cpp context (KV cache) for ``tokens`` positions, freed by the caller."""
        lib = self._lib
        params = lib.llama_context_default_params()
        params.n_ctx = params.n_batch = tokens
        params.n_ubatch = min(PHYSICAL_BATCH, tokens)
        params.n_threads = params.n_threads_batch = self.threads
        params.swa_full = False  # Gemma's sliding-window layers keep only their window, not the whole context
        context = lib.llama_init_from_model(self._model, params)
        if not context:
            raise ModelSourceError(f"llama.cpp could not create a context of {tokens} tokens")
        return context


class _Sequence:
    """One generation's context and the tokens it has read."""

    def __init__(self, step: LlamaCppStep) -> None:
        self._step = step
        self._lib = step._lib
        self.tokens: list[int] = []
        self._context = None
        self._capacity = 0
        self._free = None

    def extend(self, ids: list[int]) -> torch.Tensor:
        """Read ``ids`` after the tokens so far -> the logits after the last one, [V] float32 (a copy)."""
        needed = len(self.tokens) + len(ids)
        if needed > self._capacity:
            self._grow(needed)
            ids = self.tokens + ids  # a new context starts empty: replay what the old one had read
            self.tokens = []
        self._decode(ids)
        self.tokens.extend(ids)
        logits = self._lib.llama_get_logits_ith(self._context, -1)  # float* [V], reused by the next decode
        return torch.from_numpy(np.ctypeslib.as_array(logits, shape=(self._step.vocab_size,)).copy())

    def _grow(self, needed: int) -> None:
        limit = self._step.train_context
        capacity = min(max(needed + HEADROOM, 2 * self._capacity), max(limit, needed))
        if self._free is not None:
            self._free()  # the old context goes first: two never coexist for one generation
        self._context, self._capacity, self._free = None, 0, None  # nothing freed is left in place if creation fails
        self._context = self._step.context(capacity)
        self._capacity = capacity
        self._free = weakref.finalize(self, self._lib.llama_free, self._context)

    def _decode(self, ids: list[int]) -> None:
        tokens = (self._lib.llama_token * len(ids))(*ids)
        code = self._lib.llama_decode(self._context, self._lib.llama_batch_get_one(tokens, len(ids)))
        if code != 0:
            raise ModelSourceError(f"llama.cpp failed to decode {len(ids)} tokens (llama_decode returned {code})")
