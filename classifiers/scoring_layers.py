"""The safety model's fast scoring copies: layers [0, readout) with the LoRA merged and the nn.Linear maps in
bfloat16 (all, or all but the residual writers) or int8.

Scoring never trains the adapter, so each LoRA-adapted linear map ``W x + scale * B (A x)`` can be one map with
``W' = W + scale * B @ A``. The copy merges that into new weight tensors (the float network and the runtime's
model are never written to), then swaps every nn.Linear of the layers scoring runs for a faster one:

- ``bfloat16``: ``BFloat16Linear``, weights stored in bfloat16, the input rounded to bfloat16 for the matmul and
  the output returned in float32, so norms, residual adds, rotary tables and attention stay float32. On CPUs with
  AMX the matmuls run about 4x faster than float32 (oneDNN); measured on the shipped safety model the calibrated
  scores stay within 0.01 of float32 (BENCHMARKS.md; ``tests/classifiers/test_precision_real_model.py``).
- ``mixed``: the same, except the two maps of each layer whose output is added into the residual stream
  (``RESIDUAL_WRITERS``: attention output and MLP down projection) stay float32. On an AVX512-BF16 CPU without AMX
  (AMD Zen 5, 2026-12-04) all-bfloat16 moved scores by up to 0.02 (its matmul rounds each output to bfloat16, and
  those outputs go straight into the residual stream); keeping these two maps float32 was the variant that kept
  the 0.01 bound on the team's untrained rows, of the ten compared there (BENCHMARKS.md), and its 12-layer pass is 1.6x faster
  than float32's (44 against 72 ms for 64 tokens; all-bfloat16: 26 ms).
- ``int8``: torch's dynamic int8 (``shieldkit.model.quantize``, the same quantizer generation's int8 decoding
  uses). It moves the scores of the default policies by far more than 0.01, so it is opt-in. Its activations get
  one scale per call, so a text's int8 score also depends slightly on the other texts in its batch.
- ``float32``: the merged copy left in float32, for checking the merge.

``torch.autocast`` was not used: it casts every float32 weight to bfloat16 again on each call (no cache in
inference mode) and lowers the attention matmuls too; the copy casts each weight once and keeps attention float32.

Shapes: B windows, T tokens, D hidden size. The copy reads embeddings [B, T, D] and returns the residual stream
[B, T, D] leaving layer ``readout - 1``, as ``stack.run_layers`` does for the float network.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from shieldkit.classifiers import stack
from shieldkit.errors import ConfigError
from shieldkit.model.quantize import SCORING_PRECISIONS, quantize_linear

if TYPE_CHECKING:
    from shieldkit.classifiers.safety import SafetyModel

class BFloat16Linear(nn.Module):
    """y = x W^T + b with W stored in bfloat16 and the matmul in bfloat16; x and y keep their dtype (float32)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight", linear.weight.detach().to(torch.bfloat16), persistent=False)  # [out, in]
        bias = None if linear.bias is None else linear.bias.detach().clone()  # [out], float32
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x.to(torch.bfloat16), self.weight).to(x.dtype)  # [..., out]
        return y if self.bias is None else y + self.bias


RESIDUAL_WRITERS = ("o_proj", "down_proj")  # the linear maps whose output (after its norm) is added to the residual stream
KEPT_FLOAT32 = {"bfloat16": (), "mixed": RESIDUAL_WRITERS}  # bfloat16 copies: the linear maps each leaves float32


class ScoringLayers(nn.Module):
    """Layers [0, readout) of a safety model for inference: LoRA merged, nn.Linear maps in ``precision``."""

    def __init__(self, safety: SafetyModel, precision: str) -> None:
        super().__init__()
        if precision not in SCORING_PRECISIONS:
            raise ConfigError(f"a scoring copy's precision must be one of {', '.join(SCORING_PRECISIONS)}, "
                              f"got {precision!r}")
        inner = stack.decoder(safety.network)
        readout = safety.card.readout
        if not 0 < readout <= len(inner.layers):
            raise ConfigError(f"safety model readout {readout} is outside the model's {len(inner.layers)} layers")
        layers = nn.ModuleList(inner.layers[:readout])
        memo: dict[int, object] = {id(p): p for p in layers.parameters()}
        memo.update({id(b): b for b in layers.buffers()})
        self.layers = copy.deepcopy(layers, memo)  # new modules, the same float tensors
        self.config = inner.config  # run_layers reads the layer types from it
        self.merged = _merge_lora(self.layers)  # names of the merged linear maps
        self.precision = precision
        if precision == "int8":
            quantize_linear(self.layers)
        elif precision in KEPT_FLOAT32:
            _swap_linear(self.layers, BFloat16Linear, keep=KEPT_FLOAT32[precision])

    def forward(self, embeddings: torch.Tensor, context: stack.StackContext) -> torch.Tensor:
        """embeddings [B, T, D] (scaled, as layer 0 sees them) -> residual stream [B, T, D] after layer readout-1."""
        return stack.run_layers(self, embeddings, context, 0, len(self.layers))


def _swap_linear(layers: nn.Module, make, keep: tuple[str, ...] = ()) -> None:
    """Replace every nn.Linear in ``layers`` by ``make(linear)``, in place, except those named one of ``keep``."""
    for name, module in list(layers.named_modules()):
        if isinstance(module, nn.Linear) and name.rpartition(".")[2] not in keep:
            parent_name, _, child = name.rpartition(".")
            setattr(layers.get_submodule(parent_name) if parent_name else layers, child, make(module))


def _merge_lora(layers: nn.Module) -> list[str]:
    """Replace every LoRA-wrapped linear map in ``layers`` by an nn.Linear holding W + scale * B @ A (new tensors)."""
    from peft.tuners.lora import LoraLayer
    from peft.tuners.lora import Linear as LoraLinear

    merged = []
    for name, module in list(layers.named_modules()):
        if not isinstance(module, LoraLayer):
            continue
        if not isinstance(module, LoraLinear):
            raise ConfigError(f"a scoring copy merges LoRA on linear maps only; {name} is a "
                              f"{type(module).__name__}")
        adapters = list(module.active_adapters)
        for adapter in adapters:
            if adapter in getattr(module, "lora_variant", {}) or module.lora_bias.get(adapter, False):
                raise ConfigError(f"a scoring copy merges plain LoRA only; {name} uses a LoRA variant or a "
                                  f"LoRA bias (adapter {adapter!r})")
        base = module.get_base_layer()
        linear = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
        with torch.no_grad():
            weight = base.weight.detach().clone()  # [out, in]
            for adapter in adapters:
                if adapter in module.lora_A:
                    weight += module.get_delta_weight(adapter).to(weight.dtype)
            linear.weight = nn.Parameter(weight, requires_grad=False)
            if base.bias is not None:
                linear.bias = nn.Parameter(base.bias.detach().clone(), requires_grad=False)
        parent_name, _, child = name.rpartition(".")
        setattr(layers.get_submodule(parent_name) if parent_name else layers, child, linear)
        merged.append(name)
    return merged
