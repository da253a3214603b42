"""Benign rows the caps left out of the corpus: more held-out rows for each everyday source's false-positive budget.

The large benign sets enter the corpus capped (``corpus.SETS``: 1,500 rows per set), so most of their rows are
never trained on. The held-out split has about 220 of each, and 1 % of 220 is two rows: a source's own cut is one
of its two or three highest benign scores, an order statistic a new training seed moves (BENCHMARKS.md, "Seed
noise"). Up to ``RESERVE_PER_SET`` left-out rows of each capped everyday set join that source's budget in
calibration (``calibration.benign_threshold``); they do not join the pooled budget (a pool diluted with easy
commands would let the cut fall for the toxicity corpora's hard negatives) nor the Platt fit (the calibrated
scale stays the one the labelled held-out split gives). A reserve row is never a corpus row (normalised text)
and never matches an evaluation set (the corpus's own rule).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shieldkit.classifiers.corpus import BENIGN, EVERYDAY_SOURCES, SETS, Corpus, evaluation_keys, normalise, read_jsonl
from shieldkit.errors import DataError

RESERVE_PER_SET = 1000  # left-out rows per capped everyday set (about 7,000 in all: a few minutes to score)


@dataclass(frozen=True)
class Reserve:
    texts: list[str]  # [R]
    origin: list[str]  # [R] the set each row came from

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.origin):
            raise DataError(f"Reserve.origin has {len(self.origin)} entries for {len(self.texts)} texts")

    def __len__(self) -> int:
        return len(self.texts)

    def by_source(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        """{source: its rows' scores} for ``scores`` [R], one per reserve row (``calibration.benign_threshold``)."""
        return by_source(scores, self.origin)


def by_source(scores: np.ndarray, origin) -> dict[str, np.ndarray]:
    """{source: the scores of its rows} for scores [R] and the source of each row, origin [R]."""
    origin = np.asarray(origin)
    return {name: scores[origin == name] for name in sorted(set(origin.tolist()))}


def benign_reserve(data_root: str | Path, corpus: Corpus, per_set: int = RESERVE_PER_SET, seed: int = 0) -> Reserve:
    """A seeded sample of up to ``per_set`` rows per capped everyday benign set that are not in ``corpus``."""
    if not isinstance(per_set, int) or per_set < 0:
        raise DataError(f"per_set must be a non-negative number of rows, got {per_set!r}")
    data_root = Path(data_root)
    exact, prefixes = evaluation_keys(data_root)
    taken = {normalise(text) for text in corpus.texts}
    texts, origin = [], []
    for name, rule in SETS.items():
        if rule.cap is None or name not in EVERYDAY_SOURCES:
            continue
        path = data_root / "training" / name / "data.jsonl"
        if not path.is_file():
            raise DataError(f"training set {name} is missing: {path} (see ../shared/data/training/README.md)")
        spare: dict[str, str] = {}  # key -> first text with it, in file order
        for row in read_jsonl(path):
            key = normalise(row["text"])
            unseen = key and key not in taken and key not in exact and key[:48] not in prefixes
            if unseen and rule.labels(row) == BENIGN:
                spare.setdefault(key, row["text"])
        rows = list(spare.values())
        if len(rows) > per_set:
            keep = np.random.default_rng([seed, *name.encode("utf-8")]).choice(len(rows), per_set, replace=False)
            rows = [rows[i] for i in sorted(keep)]
        texts += rows
        origin += [name] * len(rows)
    return Reserve(texts, origin)
