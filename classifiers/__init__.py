"""Safety classifiers: one shared LoRA-adapted Gemma (the safety model) read out by a small head per policy.

    from shieldkit.classifiers import load_bank, load_classifier, train_classifier

    hate = load_classifier("hate", runtime)                 # a committed default policy, loads in a second
    bank = load_bank(None, runtime)                          # all DEFAULT_POLICIES: one adapted pass per text
    bank.score(["some text"], ["hate", "violence"])          # {policy: [probability]}
    mine = train_classifier("examples.csv", runtime, policy="spoilers", description="...")   # a new head
    mine.save("spoilers-classifier/")

Names are imported lazily, so ``import shieldkit.classifiers`` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shieldkit.lazy import lazy_exports

from shieldkit.classifiers.registry import DEFAULT_POLICIES

_EXPORTS = {
    "load_classifier": "shieldkit.classifiers.registry",
    "load_bank": "shieldkit.classifiers.registry",
    "default_policy": "shieldkit.classifiers.registry",
    "load_safety_model": "shieldkit.classifiers.registry",
    "resolve": "shieldkit.classifiers.registry",
    "train_classifier": "shieldkit.classifiers.training",
    "TrainingConfig": "shieldkit.classifiers.config",
    "load_examples": "shieldkit.classifiers.data",
    "from_pairs": "shieldkit.classifiers.data",
    "LabeledData": "shieldkit.classifiers.data",
    "Example": "shieldkit.classifiers.data",
    "HeadClassifier": "shieldkit.classifiers.safety",
    "SafetyModel": "shieldkit.classifiers.safety",
    "GemmaBank": "shieldkit.classifiers.bank",
    "binary_metrics": "shieldkit.classifiers.evaluation",
    "SafetyClassifier": "shieldkit.classifiers.base",
    "ExplainableClassifier": "shieldkit.classifiers.base",
    "ClassifierBank": "shieldkit.classifiers.base",
    "ClassifierInput": "shieldkit.classifiers.base",
    "Decision": "shieldkit.classifiers.base",
    "decide": "shieldkit.classifiers.base",
    "GRADIENTS": "shieldkit.classifiers.base",
}

__all__ = ["DEFAULT_POLICIES", *_EXPORTS]

if TYPE_CHECKING:
    from shieldkit.classifiers.bank import GemmaBank
    from shieldkit.classifiers.base import (
        GRADIENTS,
        ClassifierBank,
        ClassifierInput,
        Decision,
        ExplainableClassifier,
        SafetyClassifier,
        decide,
    )
    from shieldkit.classifiers.config import TrainingConfig
    from shieldkit.classifiers.data import Example, LabeledData, from_pairs, load_examples
    from shieldkit.classifiers.evaluation import binary_metrics
    from shieldkit.classifiers.registry import default_policy, load_bank, load_classifier, load_safety_model, resolve
    from shieldkit.classifiers.safety import HeadClassifier, SafetyModel
    from shieldkit.classifiers.training import train_classifier


__getattr__ = lazy_exports(__name__, _EXPORTS)
