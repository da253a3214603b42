"""Gradient × input: the first-order estimate of each token's contribution, signed.

score_t = Σ_d ∂target/∂x_{t,d} · x_{t,d}; positive means the token's embedding pushes the target up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shieldkit.debugger.base import Attribution, Progress, Target
from shieldkit.debugger.methods.shared import finite_or_error, gradient_at_input, masked


@dataclass(frozen=True)
class GradientXInputConfig:
    """No settings: one forward and one backward pass."""


class GradientXInput:
    name = "gradient_x_input"
    label = "Gradient × input"
    description = "∂target/∂embedding · embedding per token: signed, first-order. One backward pass."
    signed = True
    config_class = GradientXInputConfig

    def __init__(self, config: GradientXInputConfig | None = None) -> None:
        self.config = config or GradientXInputConfig()

    def attribute(self, target: Target, progress: Progress | None = None) -> Attribution:
        value, embeddings, gradients, mask = gradient_at_input(target)  # [T, D] each
        if progress:
            progress(1, 1)
        return finite_or_error(Attribution(masked((gradients * embeddings).sum(-1), mask), value), self.name)

    def config_dict(self) -> dict[str, Any]:
        return {}
