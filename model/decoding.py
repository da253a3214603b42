"""One decoding step of generation: the float model's own forward, or a faster int8 path used only here.

Decoding one token reads every weight once. On a CPU that is bound by memory traffic, and the largest read by
far is the tied output projection (V x D = 262,144 x 640 in Gemma 3 270M, 671 MB in float32, about half of a
float32 step). The int8 paths keep that read to a quarter:

- the output projection runs as an int8 matmul (per-row weight scales, activations quantized per call) for
  every token, then the ``shortlist`` highest-scoring tokens are re-scored exactly, ``W[top] @ h`` in float32.
  A greedy pick is the float argmax unless the float winner falls outside the int8 top ``shortlist`` (on the
  real 270M, all 32 greedy tokens of bench/runtime.py's 20 prompts matched); sampling sees exact values for
  the shortlist and int8 values for the rest.
- ``int8`` also runs the decoder layers' linear maps in int8 (a separate copy; norms, attention and the
  embedding are the float model's own), which changes the hidden states slightly: greedy text can drift.

- ``llama-cpp`` hands the step to llama.cpp on the GGUF file itself (``shieldkit.model.llama_cpp``, an optional
  extra): several times faster again, with greedy text that can part from the float model's.

Only ``GenerationStream`` decodes through a step. The debugger and the classifiers call ``runtime.model``,
the float model with gradients, which the int8 copy never replaces or modifies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from shieldkit.errors import ConfigError
from shieldkit.model import llama_cpp
from shieldkit.model.quantize import describe, int8_capable, int8_copy, quantize_linear

DecodeMode = Literal["reference", "int8-head", "int8", "llama-cpp"]
DECODE_MODES: tuple[DecodeMode, ...] = ("reference", "int8-head", "int8", "llama-cpp")
SHORTLIST = 64  # output-projection rows re-scored in float32 per step (64 x 640 multiply-adds: nothing)


def wants_gguf(requested: str, device: torch.device) -> bool:
    """Whether resolving ``requested`` for a model on ``device`` may pick ``llama-cpp``, so the loader should find
    (and, for the embedded model, keep and checksum) the GGUF file."""
    return requested == "llama-cpp" or (requested == "auto" and device.type == "cpu" and llama_cpp.installed())


def resolve_mode(requested: str, model: nn.Module, gguf: Path | None = None) -> DecodeMode:
    """``auto`` -> llama-cpp for a GGUF model (``gguf``: its file) on the CPU when the optional package is
    installed, else int8-head for a float32 model on the CPU (the only place the int8 kernels run), else reference.
    (int8-head keeps greedy text; ``int8`` stays opt-in: bench/runtime.py measures its drift.)
    A mode that cannot run on this model is refused, naming the setting and why."""
    int8_ok = int8_capable(model)
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    if requested == "auto":
        if gguf is not None and on_cpu and llama_cpp.installed():
            return "llama-cpp"
        return "int8-head" if int8_ok else "reference"
    if requested not in DECODE_MODES:
        raise ConfigError(f"decode (SHIELDKIT_DECODE) must be auto, {', '.join(DECODE_MODES)}, got {requested!r}")
    if requested == "llama-cpp":
        if not llama_cpp.installed():
            raise ConfigError(f"decode (SHIELDKIT_DECODE) 'llama-cpp' needs the llama-cpp-python package; {llama_cpp.INSTALL_HINT}")
        if gguf is None:
            raise ConfigError("decode (SHIELDKIT_DECODE) 'llama-cpp' needs a GGUF model (SHIELDKIT_MODEL=embedded or a "
                              ".gguf file); this one has no GGUF file")
    elif requested != "reference" and not int8_ok:
        raise ConfigError(f"decode (SHIELDKIT_DECODE) {requested!r} needs a float32 model on the CPU; this one is "
                          f"{describe(model)}")
    return requested


def float_greedy_mode(mode: DecodeMode, model: nn.Module) -> DecodeMode:
    """The mode whose greedy text is the float model's own: ``mode`` itself when it keeps it (reference,
    int8-head), else what ``auto`` picks without a GGUF (int8-head where it can run, else reference). For callers
    that explain the float model's choices (the debugger), where a continuation from llama.cpp's 8-bit
    activations would not be the model's own."""
    return mode if mode in ("reference", "int8-head") else resolve_mode("auto", model, None)


def greedy_ids(step, ids: torch.Tensor, tokens: int) -> list[int]:
    """The first ``tokens`` greedy picks of ``step`` after the prompt ``ids`` [T], ignoring <eos> (so every
    prompt yields the same number; used to compare decoding paths)."""
    cache, picked, step_ids = None, [], ids[None]  # [1, T], then [1, 1] per step
    with torch.inference_mode():
        for _ in range(tokens):
            logits, cache = step(step_ids, cache)
            picked.append(int(torch.argmax(logits)))
            step_ids = torch.tensor([[picked[-1]]])
    return picked


class ReferenceStep:
    """The float model's own forward: exactly what ``runtime.model`` computes."""

    mode: DecodeMode = "reference"

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, step_ids: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        """step_ids [1, T] (the prompt, then one token) -> (logits [V] float32 on the CPU, the updated cache)."""
        out = self.model(input_ids=step_ids, cache=cache, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].float().cpu(), out.cache


class Int8Step:
    """Decoder (float, or an int8 copy of its linear maps) -> final hidden state -> ``Int8Head``."""

    def __init__(self, model: nn.Module, *, int8_layers: bool, shortlist: int = SHORTLIST) -> None:
        self.mode: DecodeMode = "int8" if int8_layers else "int8-head"
        self.decoder = int8_copy(model.model) if int8_layers else model.model
        cap = getattr(model.config, "final_logit_softcapping", None)
        self.head = Int8Head(model.lm_head.weight, shortlist=shortlist, softcap=cap)

    def __call__(self, step_ids: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        """step_ids [1, T] -> (logits [V] float32 on the CPU, the updated cache)."""
        out = self.decoder(input_ids=step_ids, cache=cache, use_cache=True)
        hidden = out.last_hidden_state[0, -1]  # [D], after the final norm
        return self.head(hidden), out.cache


class Int8Head:
    """logits [V] = W [V, D] @ h [D]: int8 for every row, float32 for the ``shortlist`` best."""

    def __init__(self, weight: torch.Tensor, *, shortlist: int, softcap: float | None) -> None:
        self.weight = weight  # [V, D] float32, shared with the float model (tied to the input embedding)
        self.shortlist = min(shortlist, weight.shape[0])
        self.softcap = softcap  # Gemma 2's final logit soft-capping (None for Gemma 1 and 3)
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False, device="meta")  # no float allocation
        linear.weight = weight  # the shared parameter: quantization reads it once into packed int8 [V, D]
        self.linear = quantize_linear(nn.Sequential(linear))

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [D] float32 -> logits [V] float32 (soft-capped as the model's own head does)."""
        logits = self.linear(hidden[None])[0]  # [V], int8 weights and activations
        top = torch.topk(logits, self.shortlist, sorted=False).indices  # [S]
        logits[top] = self.weight[top] @ hidden  # [S] exact float32 scores
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def build_step(mode: DecodeMode, model: nn.Module, gguf: Path | None = None):
    """The step for ``mode`` (resolved by ``resolve_mode``; ``gguf`` is needed for llama-cpp)."""
    if mode == "reference":
        return ReferenceStep(model)
    if mode == "llama-cpp":
        return llama_cpp.LlamaCppStep(gguf, vocab_size=model.config.vocab_size, threads=torch.get_num_threads())
    return Int8Step(model, int8_layers=mode == "int8")
