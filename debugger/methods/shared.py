"""Small helpers the methods share."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from shieldkit.debugger.base import Attribution, Target
from shieldkit.debugger.baselines import attributable_mask
from shieldkit.errors import ConfigError
from shieldkit.model.internals import input_embeddings


def check_positive_int(value: object, owner: str, field_name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{owner}.{field_name} must be a whole number >= 1, got {value!r}")


TOKENS_PER_PASS = 4096  # batch x tokens of one batched pass: a long input gets a smaller batch, not an out-of-memory


def batch_for(config_batch: int, tokens: int) -> int:
    """The batch of a pass over inputs of ``tokens`` tokens: the configured one, smaller for long inputs (a
    2,000-token prompt in batches of 8 would hold about 7 GB of activations for the gradients of the 270M)."""
    return max(1, min(config_batch, TOKENS_PER_PASS // max(1, tokens)))


def chunks(total: int, size: int) -> Iterator[slice]:
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


def gradient_at_input(target: Target) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(target value, embeddings [T, D], gradients [T, D], attributable mask [T]) at the real input."""
    embeddings = input_embeddings(target.runtime, target.document.ids)[None]  # [1, T, D]
    values, gradients = target.scores_and_gradients(embeddings)
    return float(values[0]), embeddings[0].float().cpu(), gradients[0], attributable_mask(target)


def masked(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.where(mask, scores, torch.zeros_like(scores)).float()


def finite_or_error(attribution: Attribution, method: str) -> Attribution:
    if not torch.isfinite(attribution.scores).all() or not torch.isfinite(torch.tensor(attribution.target_value)):
        raise ConfigError(f"{method} produced non-finite scores (the target is -inf or NaN at this input)")
    return attribution
