"""Integrated gradients (Sundararajan et al., 2017), batched.

attribution_t = Σ_d (x − b)_{t,d} · ∫₀¹ ∂target/∂x_{t,d} (b + α (x − b)) dα, with the integral by quadrature over
``steps`` points, evaluated ``batch_size`` points per forward/backward pass. Completeness: the attributions sum to
target(x) − target(b); the result reports the gap left by the quadrature.

Node placement: with α = u^density (an exact change of variables), density > 1 packs the points near the baseline.
That matters for the zero baseline: every Gemma layer starts with an RMSNorm, and RMSNorm(α·x) jumps from 0 to
x/rms(x) within α ≈ 1e-6..1e-2, so uniform nodes miss most of the path's change (measured on Gemma 3 270M: a 23%
completeness gap at 16 uniform Gauss–Legendre nodes vs 6.5% with density 4, 1.6% at 32 steps).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from shieldkit.debugger.base import Attribution, Progress, Target
from shieldkit.debugger.baselines import check_baseline, input_and_baseline
from shieldkit.debugger.methods.shared import batch_for, check_positive_int, chunks, finite_or_error, masked
from shieldkit.errors import ConfigError


def _gauss_legendre(steps: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return (nodes + 1) / 2, weights / 2


def _midpoint(steps: int) -> tuple[np.ndarray, np.ndarray]:
    return (np.arange(steps) + 0.5) / steps, np.full(steps, 1 / steps)


def _trapezoid(steps: int) -> tuple[np.ndarray, np.ndarray]:
    weights = np.full(steps, 1 / (steps - 1))
    weights[[0, -1]] /= 2
    return np.linspace(0, 1, steps), weights


# rule -> (alphas [steps], weights [steps]) on [0, 1]
RULES = {"gauss_legendre": _gauss_legendre, "midpoint": _midpoint, "trapezoid": _trapezoid}


def path_nodes(config: IntegratedGradientsConfig) -> tuple[np.ndarray, np.ndarray]:
    """(α [steps], weights [steps]) with Σ weights · g(α) ≈ ∫₀¹ g(α) dα, nodes placed at u^density."""
    nodes, weights = RULES[config.rule](config.steps)
    power = config.effective_density
    return nodes**power, weights * power * nodes ** (power - 1)


@dataclass(frozen=True)
class IntegratedGradientsConfig:
    steps: int = 16  # points on the path from baseline to input (gradient evaluations)
    baseline: str = "zero"  # what attributable tokens start from: zero | pad | unk (see baselines.BASELINES)
    rule: str = "gauss_legendre"  # quadrature: gauss_legendre (most accurate per step) | midpoint | trapezoid
    batch_size: int = 8  # path points per forward/backward pass (memory vs speed)
    density: float | None = None  # nodes at α = u^density; None: 4 for the zero baseline, else 1 (uniform)

    @property
    def effective_density(self) -> float:
        if self.density is not None:
            return float(self.density)
        return 4.0 if self.baseline == "zero" else 1.0

    def __post_init__(self) -> None:
        check_positive_int(self.steps, "IntegratedGradientsConfig", "steps")
        check_positive_int(self.batch_size, "IntegratedGradientsConfig", "batch_size")
        check_baseline(self.baseline, "IntegratedGradientsConfig.baseline")
        if self.rule not in RULES:
            raise ConfigError(f"IntegratedGradientsConfig.rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if self.density is not None and (isinstance(self.density, bool) or not isinstance(self.density, (int, float))
                                         or not 0.25 <= self.density <= 8):
            raise ConfigError(f"IntegratedGradientsConfig.density must be a number in [0.25, 8], got {self.density!r}")
        if self.rule == "trapezoid" and self.steps < 2:
            raise ConfigError("IntegratedGradientsConfig.steps must be >= 2 for the trapezoid rule")


class IntegratedGradients:
    name = "integrated_gradients"
    label = "Integrated gradients"
    description = "Gradients averaged along the path from a baseline to the input: signed, sums to f(x) − f(baseline)."
    signed = True
    config_class = IntegratedGradientsConfig

    def __init__(self, config: IntegratedGradientsConfig | None = None) -> None:
        self.config = config or IntegratedGradientsConfig()

    def attribute(self, target: Target, progress: Progress | None = None) -> Attribution:
        config = self.config
        inputs, base, mask = input_and_baseline(target, config.baseline)  # [T, D], [T, D], [T]
        alphas, weights = path_nodes(config)
        delta = inputs - base  # [T, D]
        path_gradient = torch.zeros_like(inputs)  # Σ_k w_k ∂f/∂x at point k, [T, D]
        for done, part in enumerate(chunks(len(alphas), batch_for(config.batch_size, len(inputs))), start=1):
            alpha = torch.tensor(alphas[part], dtype=torch.float32)[:, None, None]  # [b, 1, 1]
            _, gradients = target.scores_and_gradients(base[None] + alpha * delta[None])  # [b, T, D]
            w = torch.tensor(weights[part], dtype=torch.float32)[:, None, None]
            path_gradient += (w * gradients).sum(0)
            if progress:
                progress(min(part.stop, len(alphas)), len(alphas))
        scores = masked((delta * path_gradient).sum(-1), mask)
        ends = target.scores(torch.stack([inputs, base]))  # [2]: f(x), f(b)
        value, baseline_value = float(ends[0]), float(ends[1])
        gap = float(scores.sum()) - (value - baseline_value)
        extras = {
            "completeness_gap": gap,
            "relative_gap": abs(gap) / max(abs(value - baseline_value), 1e-6),
        }
        return finite_or_error(Attribution(scores, value, baseline_value, extras), self.name)

    def config_dict(self) -> dict[str, Any]:
        return {**asdict(self.config), "density": self.config.effective_density}
