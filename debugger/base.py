"""Contracts of the debugger, apart from any implementation: what a target is and what a saliency method does.

A **target** is a differentiable scalar computed from the input embeddings of one token sequence: the
log-probability of a continuation span, of a next-token candidate, or a classifier's violation score. A **saliency
method** turns a target into one score per token.

Sign convention (every signed method, every view): a positive score means the token *raised* the target — the
log-probability of the target text, or the classifier's violation log-odds (or probability) — and a negative score
means it lowered it. Gradient L2 norm is unsigned: it measures sensitivity, not direction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from shieldkit.debugger.tokens import Document
    from shieldkit.model.runtime import GemmaRuntime

SIGN_CONVENTION = (
    "Positive (green) means the token raised the target — the log-probability of the target text, or the "
    "classifier's violation score; negative (red) means it lowered it."
)
UNSIGNED_NOTE = "Gradient L2 norm is unsigned: colour shows how sensitive the target is to the token, not direction."

# progress(done, total): called by long methods after each batch.
Progress = Callable[[int, int], None]


@runtime_checkable
class Target(Protocol):
    """A scalar to explain, as a function of the input embeddings of ``document``."""

    @property
    def kind(self) -> str:
        """``span``, ``next_token`` or ``classifier``."""

    @property
    def description(self) -> str:
        """What the score is, for people, e.g. ``log p(" Paris" | prompt)``."""

    @property
    def runtime(self) -> GemmaRuntime:
        """The Gemma whose input embeddings are attributed."""

    @property
    def document(self) -> Document:
        """The token sequence fed to the model, aligned with the text a person reads."""

    @property
    def highlight(self) -> tuple[int, int] | None:
        """Token positions [start, end) of the target itself (e.g. the scored span), to mark in views."""

    @property
    def influence_end(self) -> int:
        """Tokens at positions >= this cannot influence the score (causal attention); methods may skip them."""

    def details(self) -> dict[str, Any]:
        """JSON-ready facts about the target (span text, candidate, classifier name and mode, ...)."""

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        """embeddings [B, T, D] -> target values [B], without gradients."""

    def scores_and_gradients(self, embeddings: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """embeddings [B, T, D] -> (values [B], d value / d embeddings [B, T, D]), float32 on the CPU."""


@runtime_checkable
class PrefixScorer(Protocol):
    """Optional for targets: score a batch that shares a prefix, running that prefix once (causal models)."""

    def scores_after(self, embeddings: torch.Tensor, start: int) -> torch.Tensor:
        """Like ``Target.scores`` when every row equals row 0 before position ``start``."""


@dataclass(frozen=True)
class Attribution:
    """What a method returns: one score per token, plus what it measured along the way."""

    scores: torch.Tensor  # [T] float32; exactly 0 for tokens that are not attributable
    target_value: float  # the target at the real input
    baseline_value: float | None = None  # the target at the baseline (integrated gradients, leave-one-out)
    extras: dict[str, Any] = field(default_factory=dict)  # method-specific facts, JSON-ready


@runtime_checkable
class SaliencyMethod(Protocol):
    """One way of scoring tokens. Instances are built from a config by the registry."""

    name: str  # registry name, e.g. "integrated_gradients"
    label: str  # for people, e.g. "Integrated gradients"
    signed: bool  # False: scores are magnitudes (no direction)

    def attribute(self, target: Target, progress: Progress | None = None) -> Attribution:
        """Score every token of ``target.document``."""

    def config_dict(self) -> dict[str, Any]:
        """The method's settings, JSON-ready (recorded in results)."""
