"""How far two saliency results on the same target agree: rank correlation, sign agreement, shared top tokens.

Methods that disagree on a token's rank or sign are a reason to distrust a conclusion drawn from either; gradient ×
input in particular is often wrong in sign on saturated predictions. Only attributable tokens are compared (the
others score exactly 0 under every method). An unsigned method (gradient L2 norm) is compared on magnitudes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import spearmanr

from shieldkit.errors import ConfigError

if TYPE_CHECKING:
    from shieldkit.debugger.results import SaliencyResult

TOP_K = 3


@dataclass(frozen=True)
class Agreement:
    first: str  # method labels
    second: str
    tokens: int  # attributable tokens compared
    rank_correlation: float | None  # Spearman's ρ of the scores (of |score| when either method is unsigned)
    sign_agreement: float | None  # share of tokens scored non-zero by both whose signs agree (None if unsigned)
    top_overlap: float  # share of the TOP_K tokens by |score| that both put in their top TOP_K

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def method_agreement(first: SaliencyResult, second: SaliencyResult) -> Agreement:
    """Compare two results on the same text and target, token by token."""
    if [t.id for t in first.tokens] != [t.id for t in second.tokens]:
        raise ConfigError("the two results explain different token sequences; compare results on the same input")
    chosen = [i for i, t in enumerate(first.tokens) if t.kind == "text"]
    a = np.array([first.tokens[i].score for i in chosen], dtype=np.float64)
    b = np.array([second.tokens[i].score for i in chosen], dtype=np.float64)
    signed = first.signed and second.signed
    if not signed:
        a, b = np.abs(a), np.abs(b)
    rho = None
    if len(chosen) >= 3 and np.ptp(a) > 0 and np.ptp(b) > 0:
        rho = float(spearmanr(a, b).statistic)
    sign = None
    both = (a != 0) & (b != 0)
    if signed and both.any():
        sign = float(np.mean(np.sign(a[both]) == np.sign(b[both])))
    k = min(TOP_K, len(chosen))
    top_a = set(np.argsort(-np.abs(a), kind="stable")[:k].tolist())
    top_b = set(np.argsort(-np.abs(b), kind="stable")[:k].tolist())
    overlap = len(top_a & top_b) / k if k else 1.0
    return Agreement(first.method_label, second.method_label, len(chosen), rho, sign, overlap)
