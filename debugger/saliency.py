"""Run a saliency method on a target and package the result."""

from __future__ import annotations

import time
from typing import Any

from shieldkit.debugger.base import Progress, SaliencyMethod, Target
from shieldkit.debugger.methods import METHODS
from shieldkit.debugger.registry import MethodRegistry
from shieldkit.debugger.results import Completeness, SaliencyResult, TokenScore
from shieldkit.errors import ConfigError


def explain(
    target: Target,
    method: str | SaliencyMethod = "gradient_x_input",
    *,
    progress: Progress | None = None,
    registry: MethodRegistry = METHODS,
    **options: Any,
) -> SaliencyResult:
    """Score every token of ``target`` with ``method`` (a registry name plus its options, or a built method).

    Without a ``progress`` callback, long methods show a progress bar on stderr.
    """
    if isinstance(method, str):
        method = registry.create(method, **options)
    elif options:
        raise ConfigError("options are only accepted with a method name; configure a built method directly")
    started = time.perf_counter()
    if progress is None:
        from shieldkit.progress import bar

        with bar(total=None, desc=method.label, unit="step") as shown:
            attribution = method.attribute(target, lambda done, total: _advance(shown, done, total))
    else:
        attribution = method.attribute(target, progress)
    seconds = time.perf_counter() - started
    document = target.document
    tokens = tuple(
        TokenScore(t.index, t.id, t.piece, t.start, t.end, t.kind, float(score))
        for t, score in zip(document.tokens, attribution.scores.tolist())
    )
    completeness = None
    if attribution.baseline_value is not None and "completeness_gap" in attribution.extras:
        total = sum(t.score for t in tokens)
        completeness = Completeness(
            attribution_sum=total,
            target_value=attribution.target_value,
            baseline_value=attribution.baseline_value,
            gap=attribution.extras["completeness_gap"],
            relative_gap=attribution.extras["relative_gap"],
        )
    return SaliencyResult(
        method=method.name,
        method_label=method.label,
        signed=method.signed,
        config=method.config_dict(),
        target_kind=target.kind,
        target_description=target.description,
        target_value=attribution.target_value,
        target_details=target.details(),
        highlight=target.highlight,
        text=document.text,
        tokens=tokens,
        seconds=seconds,
        model=target.runtime.info.name,
        completeness=completeness,
        extras={k: v for k, v in attribution.extras.items() if k not in ("completeness_gap", "relative_gap")},
        breaks=segment_breaks(document, target.highlight),
    )


def segment_breaks(document, highlight: tuple[int, int] | None) -> tuple[int, ...]:
    """Where segments must be cut: where each part of the document begins and at the explained span's edges."""
    edges = list(document.parts)
    if highlight:
        start, end = highlight
        edges += [document.tokens[start].start, document.tokens[end - 1].end]
    return tuple(sorted({e for e in edges if 0 < e < len(document.text)}))


def _advance(shown, done: int, total: int) -> None:
    shown.total = total
    shown.n = done
    shown.refresh()
