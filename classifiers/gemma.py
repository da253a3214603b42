"""Pieces every Gemma-based classifier is built from: Platt calibration, the pooled linear head, a LoRA-wrapped
structural copy of the runtime's model, and text windows (shapes: B texts, T tokens, D hidden size).

The shared safety model (``safety.py``) puts them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from shieldkit.classifiers import stack
from shieldkit.errors import ConfigError

if TYPE_CHECKING:
    from peft import LoraConfig, PeftModel

    from shieldkit.model.runtime import GemmaRuntime


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the raw log-odds z, fitted on held-out scores."""

    slope: float = 1.0
    intercept: float = 0.0

    def apply(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.slope * z.float() + self.intercept)


class PolicyHead(nn.Module):
    """pooled [B, D] -> raw log-odds z [B]."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(hidden_size))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled.float() @ self.weight + self.bias


def attach_lora(runtime: GemmaRuntime, config: LoraConfig, seed: int = 0) -> PeftModel:
    """A LoRA-wrapped structural copy of the runtime's model (weights shared; LoRA init seeded, global RNG untouched)."""
    import warnings

    from peft import get_peft_model

    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' is_gradient_checkpointing rename, via peft
        torch.manual_seed(seed)
        return get_peft_model(stack.shared_copy(runtime.model), config)


def token_windows(tokens: Sequence[int], bos: int, max_tokens: int) -> list[list[int]]:
    """<bos> + up to ``max_tokens`` of ``tokens`` per window, windows overlapping by a quarter (at least one)."""
    stride = max(1, max_tokens * 3 // 4)
    starts = range(0, max(1, len(tokens) - max_tokens + stride), stride)
    return [[bos, *tokens[s : s + max_tokens]] for s in starts]


def text_windows(runtime: GemmaRuntime, text: str, max_tokens: int) -> list[torch.Tensor]:
    """The windows of ``text`` as the classifiers read it: [T] each (see ``token_windows``)."""
    if not isinstance(text, str):
        raise ConfigError(f"texts must be strings, got {type(text).__name__}")
    tokens = runtime.tokenizer(text, add_special_tokens=False)["input_ids"]
    return [torch.tensor(ids, dtype=torch.long) for ids in token_windows(tokens, runtime.tokenizer.bos_token_id, max_tokens)]


def pad_batch(sequences: Sequence[torch.Tensor], pad_value: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad [T_i, ...] tensors into [B, T, ...] plus the mask [B, T] (1 = real)."""
    longest = max(len(s) for s in sequences)
    out = sequences[0].new_full((len(sequences), longest, *sequences[0].shape[1:]), pad_value)
    mask = torch.zeros(len(sequences), longest, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return out, mask
