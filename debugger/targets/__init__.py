"""What can be explained: a continuation span, a next-token candidate, a classifier decision."""

from shieldkit.debugger.targets.classifier import CLASSIFIER_SCORES, ClassifierTarget, explainable
from shieldkit.debugger.targets.language_model import LanguageModelTarget
from shieldkit.debugger.targets.next_token import Candidate, NextTokenTarget, next_token_candidates
from shieldkit.debugger.targets.span import ContinuationTarget

__all__ = [
    "CLASSIFIER_SCORES",
    "Candidate",
    "ClassifierTarget",
    "ContinuationTarget",
    "LanguageModelTarget",
    "NextTokenTarget",
    "explainable",
    "next_token_candidates",
]
