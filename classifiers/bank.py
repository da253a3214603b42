"""Many policies scored together: every head reads the safety model's one pooled state per window.

Cost per text window: ``readout`` decoder layers (the frozen trunk, then the adapted layers) however many policies
the bank holds; each extra policy adds one D-vector dot product. ``bench/classifiers.py`` measures it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shieldkit.classifiers.safety import HeadClassifier, score_heads
from shieldkit.errors import ConfigError


class GemmaBank:
    """Implements ClassifierBank over HeadClassifiers that share one safety model."""

    def __init__(self, classifiers: Mapping[str, HeadClassifier]) -> None:
        if not classifiers:
            raise ConfigError("a classifier bank needs at least one classifier")
        first = next(iter(classifiers.values()))
        for name, classifier in classifiers.items():
            if classifier.safety is not first.safety:
                raise ConfigError(f"classifier {name!r} reads another safety model; a bank shares one")
        self.safety = first.safety
        self._classifiers = dict(classifiers)

    @property
    def runtime(self):
        return self.safety.runtime

    @property
    def classifiers(self) -> Mapping[str, HeadClassifier]:
        return dict(self._classifiers)

    def score(self, texts: Sequence[str], policies: Sequence[str] | None = None) -> dict[str, list[float]]:
        names = list(self._classifiers) if policies is None else list(policies)
        unknown = [name for name in names if name not in self._classifiers]
        if unknown:
            raise ConfigError(f"unknown policy {unknown[0]!r}; this bank has: {', '.join(self._classifiers)}")
        return score_heads(self.safety, {name: self._classifiers[name] for name in names}, texts)

    def __repr__(self) -> str:
        return f"GemmaBank({', '.join(self._classifiers)})"
