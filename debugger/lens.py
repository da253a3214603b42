"""The logit lens: what each layer's residual stream would predict if it were the last layer.

Each layer's state at a position goes through the final norm and the tied output embedding
(``shieldkit.model.internals.unembed``); only the chosen positions are projected, never the whole sequence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from shieldkit.debugger.targets.language_model import Prompt, prompt_part
from shieldkit.errors import ConfigError
from shieldkit.model.internals import unembed

if TYPE_CHECKING:
    from shieldkit.model.runtime import GemmaRuntime


@dataclass(frozen=True)
class LensPrediction:
    id: int
    piece: str
    probability: float


@dataclass(frozen=True)
class LensLayer:
    layer: int  # 0 = the embeddings, L = the final output
    top: tuple[LensPrediction, ...]
    watched_rank: int | None  # rank of the watched token at this layer (0 = top), if one is watched
    watched_probability: float | None


@dataclass(frozen=True)
class LogitLens:
    position: int  # the token position read; its layers predict token position + 1
    token: str  # the piece at ``position``
    watched: str | None  # the piece whose rank is followed across layers
    layers: tuple[LensLayer, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def logit_lens(runtime: GemmaRuntime, prompt: Prompt, position: int = -1, *, top_k: int = 5,
               watch: int | None = None) -> LogitLens:
    """Top ``top_k`` next-token predictions of every layer at ``position`` (default: the last token).

    ``watch``: a token id whose rank and probability are reported at every layer (default: the final top-1).
    """
    ids = prompt_part(runtime, prompt)[0]
    if not -len(ids) <= position < len(ids):
        raise ConfigError(f"position must be in {-len(ids)}..{len(ids) - 1}, got {position}")
    if not isinstance(top_k, int) or top_k < 1:
        raise ConfigError(f"top_k must be a whole number >= 1, got {top_k!r}")
    position %= len(ids)
    out = runtime.forward(ids, hidden_states=True)
    states = torch.stack([h[position] for h in out.hidden_states])  # [L + 1, D]
    last = len(states) - 1
    logits = torch.cat([unembed(runtime, states[:last]), unembed(runtime, states[last:], normed=True)])  # [L + 1, V]
    probs = torch.softmax(logits, dim=-1)
    watched = int(probs[last].argmax()) if watch is None else int(watch)
    ranks = (probs > probs[:, watched : watched + 1]).sum(-1)  # [L + 1]
    values, indices = torch.topk(probs, top_k, dim=-1)
    tokenizer = runtime.tokenizer
    layers = tuple(
        LensLayer(
            layer,
            tuple(LensPrediction(int(i), tokenizer.convert_ids_to_tokens(int(i)), float(p))
                  for i, p in zip(indices[layer], values[layer])),
            int(ranks[layer]),
            float(probs[layer, watched]),
        )
        for layer in range(len(states))
    )
    return LogitLens(position, tokenizer.convert_ids_to_tokens(int(ids[position])),
                     tokenizer.convert_ids_to_tokens(watched), layers)
