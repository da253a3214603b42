"""What a scorer is to the rest of the proxy: the small protocol that the in-process scorer (``scorer.py``) and the
scorer-service client (``remote.py``) both implement, so classifier checks and ``/v1/moderations`` never know
which one they ask.

``Scorer`` is what a check uses (a head per ``classifier:`` reference, scores for texts). ``ManagedScorer`` adds
what the app's wiring uses: whether a Gemma must be loaded for it, loading, what is available for ``/readyz``, and
shutting down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Head:
    """A classifier as a check asks for it: its key (the in-process load plan's key, or the reference as written
    for the scorer service), and the check's own threshold, if any."""

    key: str
    threshold: float | None = None


@dataclass(frozen=True)
class HeadScores:
    head: str  # the classifier's category (hate, violence, ...)
    scores: list[float]  # per text
    threshold: float  # the one the scores were judged by

    @property
    def flagged(self) -> list[bool]:
        return [score >= self.threshold for score in self.scores]


class Scorer(Protocol):
    def head(self, ref: str, threshold: float | None = None) -> Head:
        """The head a policy's ``classifier:`` reference names (resolved when the scorer was planned)."""

    def heads_for(self, policy: str) -> list[Head]:
        """The heads a guardrail policy's classifier checks use (``/v1/moderations`` answers with them)."""

    async def score(self, texts: Sequence[str], heads: Sequence[Head], *, admitted: bool = False) -> list[HeadScores]:
        """One result per head. Raises ``CheckUnavailable`` for a head that cannot be scored, ``Overloaded`` when
        the queue is full (``admitted``: the request was let in before, e.g. its output checks), anything else on
        a scoring failure."""


class ManagedScorer(Scorer, Protocol):
    @property
    def needs_model(self) -> bool:
        """Whether ``load`` needs a Gemma runtime (the start-up loads one only then)."""

    def load(self, runtime) -> None:
        """Get ready to score (in the start-up thread); raises ``ConfigError`` when the proxy must not start."""

    @property
    def available(self) -> dict[str, str]:
        """{reference: head name} of the classifiers that can be scored (as far as known), for ``/readyz``."""

    @property
    def unavailable(self) -> dict[str, str]:
        """{reference: why it cannot be scored}, for ``/readyz``."""

    async def aclose(self) -> None:
        """Refuse new work and release what the scorer holds."""
