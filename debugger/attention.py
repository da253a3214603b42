"""Attention weights per layer and head, head-averaged maps, attention rollout and attention sinks.

Weights come from one forward pass with eager attention, switched on for that pass only
(``runtime.forward(..., attentions=True)``). Shapes: L layers, H heads, T tokens; ``weights[l, h, i, j]`` is the
weight query i puts on key j, so every row sums to 1 and the upper triangle is 0 (causal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from shieldkit.debugger.targets.language_model import Prompt, prompt_part
from shieldkit.debugger.tokens import Document, build_document
from shieldkit.errors import ConfigError

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime

MAX_ATTENTION_TOKENS = 1024  # L x H x T x T floats: 18 x 4 x 1024² x 4 bytes = 300 MB for the 270M


@dataclass(frozen=True)
class AttentionMaps:
    document: Document  # the tokens, aligned with the text
    weights: torch.Tensor  # [L, H, T, T] float32
    rollout: torch.Tensor  # [L, T, T]: rollout[l, i, j] = share of token j in position i's state after layer l
    sinks: torch.Tensor  # [L, H]: mean weight that queries 1..T-1 put on the first token
    layer_types: tuple[str, ...]  # per layer: sliding_attention | full_attention (Gemma 2/3), else "attention"
    residual: float  # the identity share mixed in by rollout

    @property
    def head_average(self) -> torch.Tensor:
        """[L, T, T], the mean over heads (rows still sum to 1)."""
        return self.weights.mean(dim=1)

    @property
    def pieces(self) -> list[str]:
        return [t.piece for t in self.document.tokens]

    def sink_heads(self, threshold: float = 0.5) -> list[tuple[int, int, float]]:
        """(layer, head, sink score) of heads that put at least ``threshold`` of their attention on the first token."""
        hits = (self.sinks >= threshold).nonzero().tolist()
        return [(layer, head, float(self.sinks[layer, head])) for layer, head in hits]

    def to_dict(self, layers: list[int] | None = None, heads: bool = False, decimals: int = 4) -> dict[str, Any]:
        """JSON-ready: head-averaged maps and rollout for ``layers`` (default all), per-head weights if ``heads``,
        and the sink scores of every head."""
        chosen = list(range(self.weights.shape[0])) if layers is None else layers
        for layer in chosen:
            if not 0 <= layer < self.weights.shape[0]:
                raise ConfigError(f"layer must be in 0..{self.weights.shape[0] - 1}, got {layer}")

        def rounded(tensor: torch.Tensor) -> list:
            return torch.round(tensor, decimals=decimals).tolist()

        data: dict[str, Any] = {
            "text": self.document.text,
            "tokens": self.pieces,
            "layer_types": list(self.layer_types),
            "residual": self.residual,
            "sinks": rounded(self.sinks),
            "layers": {},
        }
        for layer in chosen:
            entry = {"head_average": rounded(self.head_average[layer]), "rollout": rounded(self.rollout[layer])}
            if heads:
                entry["heads"] = rounded(self.weights[layer])
            data["layers"][str(layer)] = entry
        return data


def attention_rollout(weights: torch.Tensor, residual: float = 0.5) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, 2020): weights [L, H, T, T] -> [L, T, T].

    Per layer: A = residual · I + (1 − residual) · mean over heads, rows renormalised to 1 (the residual stream
    carries each token's own state forward); then rollout[l] = A_l · rollout[l − 1]. Rows of every layer sum to 1.
    """
    if not 0 <= residual < 1:
        raise ConfigError(f"residual must be in [0, 1), got {residual!r}")
    layers, _, tokens, _ = weights.shape
    eye = torch.eye(tokens)
    rolled = torch.empty(layers, tokens, tokens)
    current = eye
    for layer in range(layers):
        mixed = residual * eye + (1 - residual) * weights[layer].mean(0)
        mixed = mixed / mixed.sum(-1, keepdim=True)
        current = mixed @ current
        rolled[layer] = current
    return rolled


def sink_scores(weights: torch.Tensor) -> torch.Tensor:
    """[L, H, T, T] -> [L, H]: the mean weight on the first token over queries 1..T-1 (query 0 can only attend to
    itself). Heads near 1 are "attention sinks": they park their attention on <bos>."""
    if weights.shape[-1] < 2:
        return torch.ones(weights.shape[:2])
    return weights[:, :, 1:, 0].mean(-1)


def attention_maps(runtime: GemmaRuntime, prompt: Prompt, continuation: str = "", *,
                   residual: float = 0.5) -> AttentionMaps:
    """Attention over a prompt (text, chat messages, or ids [T]) and an optional continuation."""
    ids, text = prompt_part(runtime, prompt)
    parts = [(ids.tolist(), text)]
    if continuation:
        parts.append((runtime.encode(continuation, add_bos=False).tolist(), continuation))
    document = build_document(runtime.tokenizer, parts)
    if len(document) > MAX_ATTENTION_TOKENS:
        raise ConfigError(f"attention maps are limited to {MAX_ATTENTION_TOKENS} tokens; this input has {len(document)}")
    out = runtime.forward(document.ids, attentions=True)
    weights = torch.stack(out.attentions)  # [L, H, T, T]
    config = runtime.model.config
    layer_types = tuple(getattr(config, "layer_types", None) or ["attention"] * weights.shape[0])
    return AttentionMaps(document, weights, attention_rollout(weights, residual), sink_scores(weights), layer_types, residual)


def without_first_token(matrix: torch.Tensor) -> torch.Tensor:
    """[..., T, T] -> [..., T-1, T-1]: the map with the first token (<bos>, where sink heads park their weight) taken
    out as query and as key, each row rescaled to sum to 1 over the keys left (rows with no weight left stay 0).
    What remains is how the attention that is *not* parked on <bos> is spread over the text."""
    if matrix.shape[-1] < 2:
        raise ConfigError("a map of one token has nothing left without its first token")
    rest = matrix[..., 1:, 1:]
    totals = rest.sum(-1, keepdim=True)
    return torch.where(totals > 0, rest / totals.clamp_min(1e-12), torch.zeros_like(rest))
