"""Gemma's decoder run in two spans: a frozen shared trunk and per-policy LoRA top layers.

Notation: B batch, T tokens, D hidden size, L layers; the trunk is layers [0, S), the top is layers [S, L).

A classifier only adapts the top layers, so the trunk's output for a text is the same for every policy: a bank
computes it once and runs only the top layers per policy, and training computes it once per example and reuses it
every epoch. Nothing here computes full-vocabulary logits (nor the layers above the readout): the readout multiplies a mean-pooled state of the text's tokens by
one trained D-vector (see BENCHMARKS.md for the readouts that were measured).

Each classifier runs on its own structural copy of the model whose parameters and buffers are the runtime's own
tensors (no extra weight memory). peft injects LoRA layers into that copy, never into ``runtime.model``, so
generation with the runtime is unaffected by any classifier.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime


@dataclass
class StackContext:
    """Per-batch inputs every decoder layer needs, built once and reused by trunk and top."""

    position_ids: torch.Tensor  # [B, T]
    masks: dict[str, torch.Tensor | None]  # layer type -> attention mask (None = plain causal)
    rotary: dict[str, tuple[torch.Tensor, torch.Tensor]]  # layer type -> (cos, sin) [B, T, head_dim]
    last: torch.Tensor  # [B] index of each row's last real token


def shared_copy(model: nn.Module) -> nn.Module:
    """A structural copy of ``model`` whose parameters and buffers ARE the originals (no weight memory).

    Modules, configs and plain attributes are new objects, so injecting adapters or switching the attention
    implementation in the copy leaves the original untouched.
    """
    memo: dict[int, object] = {id(p): p for p in model.parameters()}
    memo.update({id(b): b for b in model.buffers()})
    return copy.deepcopy(model, memo)


def decoder(model: nn.Module) -> nn.Module:
    """The decoder inside a causal LM (GemmaForCausalLM.model), also through a peft wrapper."""
    inner = model
    while not hasattr(inner, "layers"):
        inner = inner.get_base_model() if hasattr(inner, "get_base_model") else inner.model
    return inner


def build_context(model: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> StackContext:
    """Masks, positions and rotary tables for hidden [B, T, D]; attention_mask [B, T] (1 = token, 0 = padding)."""
    from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

    inner = decoder(model)
    config = inner.config
    batch, tokens = hidden.shape[:2]
    if attention_mask is None:
        attention_mask = torch.ones(batch, tokens, dtype=torch.long, device=hidden.device)
    attention_mask = attention_mask.to(hidden.device).long()
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # right or left padding both work
    last = tokens - 1 - attention_mask.flip(-1).argmax(-1)  # [B]
    mask_mask = None if bool(attention_mask.all()) else attention_mask
    kwargs = dict(config=config, inputs_embeds=hidden, attention_mask=mask_mask, cache=None, position_ids=position_ids)
    masks: dict[str, torch.Tensor | None] = {}
    rotary = {}
    for layer_type in set(config.layer_types):
        make = create_sliding_window_causal_mask if layer_type == "sliding_attention" else create_causal_mask
        masks[layer_type] = make(**kwargs)
        rotary[layer_type] = _rotary(inner, hidden, position_ids, layer_type)
    return StackContext(position_ids=position_ids, masks=masks, rotary=rotary, last=last)


def _rotary(inner: nn.Module, hidden: torch.Tensor, position_ids: torch.Tensor, layer_type: str):
    if hasattr(inner, "rotary_emb_local") and layer_type == "sliding_attention":  # older Gemma 3 code
        return inner.rotary_emb_local(hidden, position_ids)
    try:
        return inner.rotary_emb(hidden, position_ids, layer_type)
    except TypeError:  # Gemma 1/2: one rotary table
        return inner.rotary_emb(hidden, position_ids)


def run_layers(model: nn.Module, hidden: torch.Tensor, context: StackContext, start: int, end: int) -> torch.Tensor:
    """hidden [B, T, D] entering layer ``start`` -> residual stream [B, T, D] leaving layer ``end - 1``."""
    inner = decoder(model)
    layer_types = getattr(inner.config, "layer_types", None) or ["full_attention"] * inner.config.num_hidden_layers
    for index in range(start, end):
        kind = layer_types[index]
        hidden = inner.layers[index](
            hidden,
            attention_mask=context.masks.get(kind, context.masks.get("full_attention")),
            position_embeddings=context.rotary.get(kind, context.rotary.get("full_attention")),
            position_ids=context.position_ids,
        )
        if isinstance(hidden, tuple):  # older decoder layers return (hidden, ...)
            hidden = hidden[0]
    return hidden


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over each row's real tokens except the first (<bos>): hidden [B, T, D], mask [B, T] -> [B, D].

    A row holding only <bos> (an empty text) pools <bos> itself, so every row gets a finite state.
    """
    mask = attention_mask.to(hidden.device).float().clone()
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    first = mask.argmax(-1)  # [B] first real token (right or left padding)
    lonely = mask.sum(-1) <= 1
    mask[rows[~lonely], first[~lonely]] = 0.0
    weights = mask / mask.sum(-1, keepdim=True)
    return torch.einsum("bt,btd->bd", weights.to(hidden.dtype), hidden)
