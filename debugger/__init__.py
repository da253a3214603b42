"""The model debugger: token saliency and attention for Gemma and for classifier decisions (no UI code here).

    from shieldkit.debugger import ContinuationTarget, explain
    from shieldkit.model import GemmaRuntime

    runtime = GemmaRuntime.load()
    target = ContinuationTarget(runtime, "The capital of France is", " Paris")
    result = explain(target, "integrated_gradients", steps=16)
    for segment in result.segments("words"):
        print(f"{segment.score:+.3f}  {segment.text!r}")
    result.save("paris.html")

Sign convention: a positive score means the token raised the target (the log-probability of the target text, or
the classifier's violation score); negative means it lowered it. Names are imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shieldkit.lazy import lazy_exports

_EXPORTS = {
    "SIGN_CONVENTION": "shieldkit.debugger.base",
    "Target": "shieldkit.debugger.base",
    "SaliencyMethod": "shieldkit.debugger.base",
    "Attribution": "shieldkit.debugger.base",
    "METHODS": "shieldkit.debugger.methods",
    "MethodRegistry": "shieldkit.debugger.registry",
    "ContinuationTarget": "shieldkit.debugger.targets",
    "NextTokenTarget": "shieldkit.debugger.targets",
    "ClassifierTarget": "shieldkit.debugger.targets",
    "next_token_candidates": "shieldkit.debugger.targets",
    "explainable": "shieldkit.debugger.targets",
    "explain": "shieldkit.debugger.saliency",
    "SaliencyResult": "shieldkit.debugger.results",
    "Segment": "shieldkit.debugger.aggregation",
    "GRANULARITIES": "shieldkit.debugger.aggregation",
    "aggregate": "shieldkit.debugger.aggregation",
    "Agreement": "shieldkit.debugger.agreement",
    "method_agreement": "shieldkit.debugger.agreement",
    "Contrast": "shieldkit.debugger.contrast",
    "contrast": "shieldkit.debugger.contrast",
    "segment_differences": "shieldkit.debugger.contrast",
    "target_scorer": "shieldkit.debugger.contrast",
    "AttentionMaps": "shieldkit.debugger.attention",
    "attention_maps": "shieldkit.debugger.attention",
    "attention_rollout": "shieldkit.debugger.attention",
    "without_first_token": "shieldkit.debugger.attention",
    "LogitLens": "shieldkit.debugger.lens",
    "logit_lens": "shieldkit.debugger.lens",
    "Document": "shieldkit.debugger.tokens",
    "build_document": "shieldkit.debugger.tokens",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from shieldkit.debugger.agreement import Agreement, method_agreement
    from shieldkit.debugger.aggregation import GRANULARITIES, Segment, aggregate
    from shieldkit.debugger.attention import AttentionMaps, attention_maps, attention_rollout, without_first_token
    from shieldkit.debugger.contrast import Contrast, contrast, segment_differences, target_scorer
    from shieldkit.debugger.base import SIGN_CONVENTION, Attribution, SaliencyMethod, Target
    from shieldkit.debugger.saliency import explain
    from shieldkit.debugger.lens import LogitLens, logit_lens
    from shieldkit.debugger.methods import METHODS
    from shieldkit.debugger.registry import MethodRegistry
    from shieldkit.debugger.results import SaliencyResult
    from shieldkit.debugger.targets import ClassifierTarget, ContinuationTarget, NextTokenTarget, explainable, next_token_candidates
    from shieldkit.debugger.tokens import Document, build_document


__getattr__ = lazy_exports(__name__, _EXPORTS)
