"""Gradient L2 norm: how sensitive the target is to each token's embedding (unsigned)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shieldkit.debugger.base import Attribution, Progress, Target
from shieldkit.debugger.methods.shared import finite_or_error, gradient_at_input, masked


@dataclass(frozen=True)
class GradientNormConfig:
    """No settings: one forward and one backward pass."""


class GradientNorm:
    name = "gradient_norm"
    label = "Gradient L2 norm"
    description = "‖∂target/∂embedding‖ per token: sensitivity, unsigned. One backward pass."
    signed = False
    config_class = GradientNormConfig

    def __init__(self, config: GradientNormConfig | None = None) -> None:
        self.config = config or GradientNormConfig()

    def attribute(self, target: Target, progress: Progress | None = None) -> Attribution:
        value, _, gradients, mask = gradient_at_input(target)  # gradients [T, D]
        if progress:
            progress(1, 1)
        return finite_or_error(Attribution(masked(gradients.norm(dim=-1), mask), value), self.name)

    def config_dict(self) -> dict[str, Any]:
        return {}
