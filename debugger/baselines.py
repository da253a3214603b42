"""Baselines: what an attributable token is replaced with (integrated gradients' path start, leave-one-out's hole).

Only attributable tokens change; <bos>, chat control tokens and a classifier's template keep their embeddings, so
they get exactly zero attribution and the model is never fed a corrupted <bos>.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from shieldkit.errors import ConfigError
from shieldkit.model.internals import input_embeddings

if TYPE_CHECKING:
    from shieldkit.debugger.base import Target
    from shieldkit.model.runtime import GemmaRuntime


def _token_row(attribute: str) -> Callable[[GemmaRuntime, torch.Tensor], torch.Tensor]:
    def row(runtime: GemmaRuntime, like: torch.Tensor) -> torch.Tensor:
        token_id = getattr(runtime.tokenizer, attribute, None)
        if token_id is None:
            raise ConfigError(f"the tokenizer has no {attribute.removesuffix('_id')}; use the 'zero' baseline")
        return input_embeddings(runtime, torch.tensor([token_id]))[0].to(like.dtype)

    return row


# name -> the [D] embedding an attributable token is replaced with
BASELINES: dict[str, Callable[[GemmaRuntime, torch.Tensor], torch.Tensor]] = {
    "zero": lambda runtime, like: torch.zeros(like.shape[-1], dtype=like.dtype),  # the all-zero embedding
    "pad": _token_row("pad_token_id"),  # the <pad> token's embedding
    "unk": _token_row("unk_token_id"),  # the <unk> token's embedding
}


def check_baseline(name: str, field_name: str) -> None:
    if name not in BASELINES:
        raise ConfigError(f"{field_name} must be one of {', '.join(BASELINES)}, got {name!r}")


def attributable_mask(target: Target) -> torch.Tensor:
    """[T] bool: the tokens a method attributes (text tokens)."""
    return torch.tensor([token.attributable for token in target.document.tokens], dtype=torch.bool)


def input_and_baseline(target: Target, baseline: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input embeddings [T, D], baseline embeddings [T, D], attributable mask [T]), float32 on the CPU."""
    check_baseline(baseline, "baseline")
    inputs = input_embeddings(target.runtime, target.document.ids).float().cpu()
    mask = attributable_mask(target)
    row = BASELINES[baseline](target.runtime, inputs).float().cpu()
    base = torch.where(mask[:, None], row.expand_as(inputs), inputs)
    return inputs, base, mask
