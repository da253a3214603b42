"""Settings for a few-shot custom policy (a head on the safety model), checked when built (the message names the
bad field). The shared safety model's own settings are ``safety_training.SafetyTrainingConfig``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from shieldkit.errors import ConfigError

THRESHOLD_RULE_NAMES = ("f1", "youden", "f1-smooth")  # the keys of evaluation.THRESHOLD_RULES (kept import-light for the CLI)
MAX_SEED = 2**32 - 2  # numpy and sklearn take seeds below 2**32, and the inner cross-validation uses seed + 1
C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # head strengths the inner cross-validation chooses from


@dataclass(frozen=True)
class TrainingConfig:
    cv_folds: int = 3  # stratified folds whose held-out scores choose the threshold and calibrate probabilities
    cv_repeats: int = 5  # fold splits whose held-out scores are averaged per example (1 = a single split)
    threshold_rule: str = "f1"  # how held-out scores set the threshold: "f1" (F1-best), "youden" (max TPR - FPR) or
    #                             "f1-smooth" (F1-best under a normal model of each class's held-out log-odds)
    c: float | None = None  # inverse L2 strength of the logistic head on standardised states; None = from C_GRID
    #                         by inner cross-validated log-loss
    seed: int = 0  # fixes the fold splits

    def __post_init__(self) -> None:
        if isinstance(self.cv_folds, bool) or not isinstance(self.cv_folds, int) or self.cv_folds < 2:
            raise ConfigError(f"TrainingConfig.cv_folds must be a whole number >= 2, got {self.cv_folds!r}")
        if isinstance(self.cv_repeats, bool) or not isinstance(self.cv_repeats, int) or self.cv_repeats < 1:
            raise ConfigError(f"TrainingConfig.cv_repeats must be a whole number >= 1, got {self.cv_repeats!r}")
        if self.threshold_rule not in THRESHOLD_RULE_NAMES:
            raise ConfigError(f"TrainingConfig.threshold_rule must be one of {', '.join(THRESHOLD_RULE_NAMES)}, "
                              f"got {self.threshold_rule!r}")
        if self.c is not None:
            ok = isinstance(self.c, (int, float)) and not isinstance(self.c, bool) and math.isfinite(self.c) and self.c > 0
            if not ok:
                raise ConfigError(f"TrainingConfig.c must be a finite number > 0 (or None: chosen), got {self.c!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"TrainingConfig.seed must be a whole number from 0 to {MAX_SEED}, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"TrainingConfig: unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**values)
