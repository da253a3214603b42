"""Contracts for safety classifiers, apart from any implementation.

Everything that consumes a classifier (the guardrail proxy, the debugger, the evaluator) codes against these
protocols; the LoRA-on-Gemma classifiers implement them, and tests may use any fake that does too.

A classifier answers one question for one policy: the probability that a text violates it. ``threshold`` is the
decision threshold on that probability, calibrated when the classifier was trained (not 0.5 by default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from shieldkit.model.runtime import GemmaRuntime

# Capability flags: what a classifier can do beyond scoring. UIs offer only what a classifier declares.
GRADIENTS = "gradients"  # implements ExplainableClassifier (saliency of its decision)


@runtime_checkable
class SafetyClassifier(Protocol):
    @property
    def name(self) -> str:
        """The policy name, e.g. ``hate`` or ``prompt_injection``."""

    @property
    def description(self) -> str:
        """One paragraph: what the policy forbids and allows."""

    @property
    def threshold(self) -> float:
        """Decision threshold on the probability: flagged when score >= threshold."""

    @property
    def capabilities(self) -> frozenset[str]:
        """Capability flags, e.g. ``{GRADIENTS}``."""

    def score(self, texts: Sequence[str]) -> list[float]:
        """Probability in [0, 1] that each text violates the policy."""


@dataclass(frozen=True)
class ClassifierInput:
    """What a Gemma-based classifier actually reads for one text."""

    input_ids: torch.Tensor  # [T] the full prompt the classifier sees (template + text), with <bos>
    text_start: int  # token positions [text_start, text_end) hold the text itself
    text_end: int
    offsets: list[tuple[int, int]]  # per token in [text_start, text_end): (start, end) character span in the text


@runtime_checkable
class ExplainableClassifier(SafetyClassifier, Protocol):
    """A classifier whose decision is differentiable with respect to Gemma's input embeddings."""

    @property
    def runtime(self) -> GemmaRuntime:
        """The Gemma runtime the classifier runs on (its embeddings are the ones to perturb)."""

    def prepare(self, text: str) -> ClassifierInput:
        """The prompt ids for ``text`` and where the text's tokens are."""

    def logits_from_embeddings(self, embeddings: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """embeddings [B, T, D] (as layer 0 sees them) -> class logits [B, 2] for (allowed, violates), differentiable.

        ``softmax(logits)[:, 1]`` is the uncalibrated violation probability; ``logits[:, 1] - logits[:, 0]`` is the
        log-odds used as the contrastive "violates vs allowed" target.
        """


@runtime_checkable
class ClassifierBank(Protocol):
    """Several policies scored together; implementations share the base model's work across policies."""

    @property
    def classifiers(self) -> Mapping[str, SafetyClassifier]:
        """Loaded classifiers by policy name."""

    def score(self, texts: Sequence[str], policies: Sequence[str] | None = None) -> dict[str, list[float]]:
        """{policy: [probability per text]} for the named policies (default: all)."""


@dataclass(frozen=True)
class Decision:
    policy: str
    score: float  # probability of a violation
    threshold: float
    flagged: bool


def decide(classifier: SafetyClassifier, texts: Sequence[str], threshold: float | None = None) -> list[Decision]:
    """Score and threshold: the classifier's calibrated threshold unless one is given."""
    cut = classifier.threshold if threshold is None else threshold
    return [Decision(classifier.name, score, cut, score >= cut) for score in classifier.score(texts)]
