"""The safety model's int8 scoring copy: layers [0, readout) with the LoRA merged and every nn.Linear in int8.

Scoring never trains the adapter, so each LoRA-adapted linear map ``W x + scale * B (A x)`` can be one map with
``W' = W + scale * B @ A``. The copy merges that into new weight tensors (the float network and the runtime's
model are never written to), then swaps every nn.Linear of the layers scoring runs for torch's dynamic int8 one
(``shieldkit.model.quantize``, the same quantizer generation's int8 decoding uses). Norms, rotary tables, the
embedding and the attention arithmetic stay float32; the trunk layers' float weights are shared, not copied.

Shapes: B windows, T tokens, D hidden size. The copy reads embeddings [B, T, D] and returns the residual stream
[B, T, D] leaving layer ``readout - 1``, as ``stack.run_layers`` does for the float network.

Accuracy (measured on the shipped safety model, BENCHMARKS.md): dynamic int8 moves the calibrated scores of the
default policies by far more than 0.01, so float32 stays the default precision and this copy is opt-in
(``SHIELDKIT_CLASSIFIER_PRECISION=int8``). Its activations get one scale per call, so with int8 a text's score also
depends slightly on the other texts in its batch.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
from torch import nn

from shieldkit.classifiers import stack
from shieldkit.errors import ConfigError
from shieldkit.model.quantize import quantize_linear

if TYPE_CHECKING:
    from shieldkit.classifiers.safety import SafetyModel


class ScoringLayers(nn.Module):
    """Layers [0, readout) of a safety model for inference: LoRA merged, nn.Linear maps int8 (or float when
    ``quantized`` is False: the merged float copy, for checking the merge)."""

    def __init__(self, safety: SafetyModel, *, quantized: bool = True) -> None:
        super().__init__()
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
        self.quantized = quantized
        if quantized:
            quantize_linear(self.layers)

    def forward(self, embeddings: torch.Tensor, context: stack.StackContext) -> torch.Tensor:
        """embeddings [B, T, D] (scaled, as layer 0 sees them) -> residual stream [B, T, D] after layer readout-1."""
        return stack.run_layers(self, embeddings, context, 0, len(self.layers))


def _merge_lora(layers: nn.Module) -> list[str]:
    """Replace every LoRA-wrapped linear map in ``layers`` by an nn.Linear holding W + scale * B @ A (new tensors)."""
    from peft.tuners.lora import LoraLayer
    from peft.tuners.lora import Linear as LoraLinear

    merged = []
    for name, module in list(layers.named_modules()):
        if not isinstance(module, LoraLayer):
            continue
        if not isinstance(module, LoraLinear):
            raise ConfigError(f"the int8 scoring copy merges LoRA on linear maps only; {name} is a "
                              f"{type(module).__name__}")
        adapters = list(module.active_adapters)
        for adapter in adapters:
            if adapter in getattr(module, "lora_variant", {}) or module.lora_bias.get(adapter, False):
                raise ConfigError(f"the int8 scoring copy merges plain LoRA only; {name} uses a LoRA variant or a "
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
