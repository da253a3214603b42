"""Training settings for a few-shot classifier, checked when built (the message names the bad field)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from shieldkit.errors import ConfigError

LORA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FINAL_MODELS = ("soup", "refit")
THRESHOLD_RULE_NAMES = ("f1", "youden")  # the keys of evaluation.THRESHOLD_RULES (kept import-light for the CLI)


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 8  # passes over the training examples (per cross-validation fold, and for the final fit if refit)
    learning_rate: float = 2e-3  # AdamW step size for the LoRA weights
    head_learning_rate: float = 1e-4  # AdamW step size for the linear head (it starts from a fitted probe)
    rank: int = 4  # LoRA rank r
    alpha: float = 8.0  # LoRA scaling numerator: updates are scaled by alpha / rank
    batch_size: int = 8  # examples per optimizer step (grouped by length to limit padding)
    readout_layer: int | None = None  # pooled states are read after this many layers; None = 2/3 of the depth
    lora_layers: int | None = None  # LoRA on this many layers just below the readout; None = half the readout depth
    target_modules: tuple[str, ...] = LORA_MODULES  # which linear layers of those decoder layers get LoRA
    max_tokens: int = 256  # text tokens per window; longer texts are scored window by window (highest score wins)
    cv_folds: int = 3  # stratified folds whose held-out scores choose the threshold and calibrate probabilities
    final_model: str = "soup"  # "soup": average the fold models (LoRA updates re-factored to rank r, heads averaged);
    #                            "refit": train once more on all examples
    threshold_rule: str = "f1"  # how cross-validated scores set the threshold: "f1" (F1-best) or "youden" (max TPR - FPR)
    probe_c: float = 0.01  # inverse L2 strength of the logistic-regression probe that initialises the head
    seed: int = 0  # one seed fixes LoRA init, fold split and batch order

    def __post_init__(self) -> None:
        _whole(self, "epochs", 1)
        _positive(self, "learning_rate")
        _positive(self, "head_learning_rate", allow_zero=True)
        _whole(self, "rank", 1)
        _positive(self, "alpha")
        _whole(self, "batch_size", 1)
        if self.readout_layer is not None:
            _whole(self, "readout_layer", 1)
        if self.lora_layers is not None:
            _whole(self, "lora_layers", 1)
        modules = (self.target_modules,) if isinstance(self.target_modules, str) else tuple(self.target_modules)
        if not modules or not all(isinstance(m, str) and m for m in modules):
            raise ConfigError(f"TrainingConfig.target_modules must be non-empty module names, got {self.target_modules!r}")
        unknown = sorted(set(modules) - set(LORA_MODULES))
        if unknown:
            raise ConfigError(
                f"TrainingConfig.target_modules: unknown module {unknown[0]!r}; known: {', '.join(LORA_MODULES)}"
            )
        object.__setattr__(self, "target_modules", modules)
        _whole(self, "max_tokens", 8)
        _whole(self, "cv_folds", 2)
        if self.final_model not in FINAL_MODELS:
            raise ConfigError(f"TrainingConfig.final_model must be one of {', '.join(FINAL_MODELS)}, got {self.final_model!r}")
        if self.threshold_rule not in THRESHOLD_RULE_NAMES:
            raise ConfigError(f"TrainingConfig.threshold_rule must be one of {', '.join(THRESHOLD_RULE_NAMES)}, "
                              f"got {self.threshold_rule!r}")
        _positive(self, "probe_c")
        _whole(self, "seed", 0)
        if self.readout_layer is not None and self.lora_layers is not None and self.lora_layers > self.readout_layer:
            raise ConfigError(
                f"TrainingConfig.lora_layers ({self.lora_layers}) cannot exceed readout_layer ({self.readout_layer})"
            )

    def layer_span(self, num_layers: int) -> tuple[int, int]:
        """(first LoRA layer, readout layer) for a model of ``num_layers`` decoder layers."""
        readout = self.readout_layer if self.readout_layer is not None else max(1, round(num_layers * 2 / 3))
        if readout > num_layers:
            raise ConfigError(f"TrainingConfig.readout_layer {readout} exceeds the model's {num_layers} layers")
        lora = self.lora_layers if self.lora_layers is not None else max(1, readout // 2)
        if lora > readout:
            raise ConfigError(f"TrainingConfig.lora_layers {lora} exceeds readout_layer {readout}")
        return readout - lora, readout

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["target_modules"] = list(self.target_modules)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"TrainingConfig: unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        clean = dict(values)
        if "target_modules" in clean and isinstance(clean["target_modules"], list):
            clean["target_modules"] = tuple(clean["target_modules"])
        return cls(**clean)


def _whole(config: TrainingConfig, name: str, minimum: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"TrainingConfig.{name} must be a whole number >= {minimum}, got {value!r}")


def _positive(config: TrainingConfig, name: str, *, allow_zero: bool = False) -> None:
    value = getattr(config, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise ConfigError(f"TrainingConfig.{name} must be a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}")
