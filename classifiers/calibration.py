"""Calibrating the default heads on the held-out split: Platt scaling and a threshold at a false-positive budget.

Scores are computed exactly as at inference (every window of a text through the safety model, the highest
log-odds wins), so the threshold describes what the guardrail will do, long texts included. The threshold is the
lowest cut whose false-positive rate stays within the budget on the held-out allowed-by-every-policy rows of
all benign sources together and of *each* source of ordinary traffic (``corpus.EVERYDAY_SOURCES``) with at least
``MIN_SOURCE_ROWS`` of them: a budget met only on average would be met by the many short assistant commands and
broken by the long, chatty prompts. A source's own budget also counts the rows of its set that the corpus's cap
left out (``reserve.py``), so it does not hang on the two or three highest of its few hundred held-out rows. The
threshold is never below ``PROBABILITY_FLOOR``: held-out benign rows of
these sources are easy, so for a policy with few look-alikes among them (violence, self_harm) the budget alone lets
the cut fall to a few per cent, where a calibrated model is still saying "more likely allowed" and a figurative
"this traffic is murder" crosses it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from shieldkit.classifiers.corpus import EVERYDAY_SOURCES, UNKNOWN, Corpus
from shieldkit.classifiers.evaluation import binary_metrics, fit_platt
from shieldkit.classifiers.reserve import Reserve

MIN_SOURCE_ROWS = 100  # a source's own budget counts once it has this many held-out benign rows
PROBABILITY_FLOOR = 0.5  # a text is flagged only when its calibrated probability of violating is at least this


def fpr_threshold(probabilities: np.ndarray, budget: float) -> float:
    """The lowest threshold flagging at most ``budget`` of these allowed rows (midway to the next score)."""
    p = np.sort(np.asarray(probabilities, dtype=np.float64))[::-1]
    allowed = int(np.floor(budget * len(p)))  # this many may be flagged
    if allowed >= len(p):
        return 0.0
    above = p[allowed]  # the highest score that must pass
    below = p[allowed - 1] if allowed > 0 else min(1.0, above + 1e-3)
    return float(min(1.0, (above + below) / 2 if below > above else np.nextafter(above, 2.0)))


def benign_threshold(probabilities: np.ndarray, sources: np.ndarray, budget: float,
                     reserve: Mapping[str, np.ndarray] | None = None) -> tuple[float, str]:
    """The threshold meeting ``budget`` on all rows and on every everyday source with enough rows (its held-out
    rows plus its ``reserve`` scores, if any), and which one set it (or the probability floor, when every budget
    allows a lower cut)."""
    reserve = reserve or {}
    cut, binding = fpr_threshold(probabilities, budget), "all benign rows"
    for source in sorted((set(sources.tolist()) | set(reserve)) & set(EVERYDAY_SOURCES)):
        chosen = np.concatenate([probabilities[sources == source], reserve.get(source, np.zeros(0))])
        if len(chosen) >= MIN_SOURCE_ROWS:
            candidate = fpr_threshold(chosen, budget)
            if candidate > cut:
                cut, binding = candidate, source
    if cut < PROBABILITY_FLOOR:
        cut, binding = PROBABILITY_FLOOR, f"probability floor {PROBABILITY_FLOOR:g}"
    return cut, binding


def held_out_logodds(safety, heads: Mapping[str, torch.nn.Module], texts: list[str]) -> np.ndarray:
    """[N, P] raw log-odds per text, the highest over its windows (as at inference)."""
    pooled, owners = safety.pooled(texts)
    with torch.inference_mode():
        z = torch.stack([head(pooled) for head in heads.values()], dim=-1).double().numpy() if owners else np.zeros((0, len(heads)))
    out = np.full((len(texts), len(heads)), -np.inf)
    for row, owner in enumerate(owners):
        out[owner] = np.maximum(out[owner], z[row])
    return out


def calibrate_heads(safety, heads: Mapping[str, torch.nn.Module], corpus: Corpus, budget: float,
                    descriptions: Mapping[str, str], training: dict, reserve: Reserve | None = None) -> dict:
    """{policy: HeadClassifier} with Platt scaling and threshold from the corpus's calibration split (and the
    ``reserve`` rows in each everyday source's own budget)."""
    from shieldkit.classifiers.safety import HeadCard, HeadClassifier

    held = corpus.subset("calibration")
    z = held_out_logodds(safety, heads, [corpus.texts[i] for i in held])
    labels = corpus.labels[held]
    benign = (labels == 0).all(axis=1)
    sources = np.array(corpus.origin)[held][benign]
    reserve = reserve or Reserve([], [])
    z_reserve = held_out_logodds(safety, heads, reserve.texts) if len(reserve) else np.zeros((0, len(heads)))
    out = {}
    for column, (name, head) in enumerate(heads.items()):
        known = labels[:, column] != UNKNOWN
        y = labels[known, column].astype(int)
        calibration = fit_platt(z[known, column], y)
        p = calibration.apply(torch.tensor(z[:, column])).numpy()
        p_reserve = calibration.apply(torch.tensor(z_reserve[:, column])).numpy()
        threshold, binding = benign_threshold(p[benign], sources, budget, reserve.by_source(p_reserve))
        metrics = binary_metrics(y, p[known], threshold)
        metrics["threshold_rule"] = (f"false-positive rate <= {budget:g} on all {int(benign.sum())} held-out benign rows and "
                                     f"on each everyday source with >= {MIN_SOURCE_ROWS} of them (and {len(reserve)} rows "
                                     f"the caps left out), and at least {PROBABILITY_FLOOR:g} (binding: {binding})")
        metrics["split"] = "calibration (held out from training)"
        card = HeadCard(policy=name, description=descriptions.get(name, ""), threshold=threshold, calibration=calibration,
                        safety_model=safety.card.fingerprint, metrics=metrics, training={"joint": True, **training},
                        data={"corpus_sha256": corpus.fingerprint(), "positives": int((y == 1).sum()), "n": int(len(y))})
        out[name] = HeadClassifier(safety, card, head)
    return out
