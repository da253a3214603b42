"""A pool of texts to score with a classifier, and which of them to label next.

``read_pool`` reads a CSV/TSV or JSONL file with a text column and, optionally, a label column (the output of
``shieldkit classify`` is such a JSONL). ``rank_for_labelling`` orders unlabelled texts by how much a label would
help the classifier: texts it is unsure about (score near its threshold, measured in log-odds), spread over the
pool rather than bunched (each pick is discounted by its character-n-gram similarity to the texts already picked),
and never a near-duplicate of one already picked. The picks go to a person, whose labels make a CSV that
``shieldkit train --data`` takes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shieldkit.errors import DataError

DUPLICATE_SIMILARITY = 0.8  # tf-idf cosine of character 3–5-grams from which two texts count as one ("." vs "!": 0.87)


@dataclass(frozen=True)
class PoolRow:
    line: int  # 1-based row (CSV: data row after the header; JSONL: line)
    text: str
    label: int | None  # 1 violates, 0 allowed, None unlabelled


def read_pool(path: str | Path, *, text_column: str = "text", label_column: str = "label") -> list[PoolRow]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return parse_pool(path.read_bytes(), path.name, text_column=text_column, label_column=label_column)


def parse_pool(data: bytes, name: str, *, text_column: str = "text", label_column: str = "label") -> list[PoolRow]:
    """Rows of a CSV/TSV (header row; ',', ';' or tab, whichever the header has most of) or a JSONL file (by
    ``name``'s suffix)."""
    import pandas as pd

    from shieldkit.classifiers.data import parse_label

    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not content.strip():
        raise DataError(f"{name}: the file is empty")
    try:
        if name.lower().endswith((".jsonl", ".ndjson", ".json")):
            frame = pd.read_json(io.StringIO(content), lines=True, dtype=False)
        else:
            header = content.splitlines()[0]
            delimiter = max((",", ";", "\t"), key=header.count)  # as classifiers.data reads CSVs
            frame = pd.read_csv(io.StringIO(content), sep=delimiter, dtype=str, keep_default_na=False)
    except ValueError as exc:
        raise DataError(f"{name}: cannot read it as {'JSON lines' if name.lower().endswith('l') else 'CSV'} ({exc})") from None
    if text_column not in frame.columns:
        raise DataError(f"{name}: missing column {text_column!r} (found: {', '.join(map(str, frame.columns)) or 'nothing'})")
    rows = []
    for number, record in enumerate(frame.to_dict("records"), start=1):
        text = record[text_column]
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{name}: row {number}: the text is empty")
        raw = record.get(label_column)
        missing = raw is None or (isinstance(raw, float) and math.isnan(raw)) or (isinstance(raw, str) and not raw.strip())
        rows.append(PoolRow(number, text, None if missing else parse_label(raw, f"{name}: row {number}")))
    return rows


@dataclass(frozen=True)
class Suggestion:
    index: int  # position in the texts given
    text: str
    score: float  # the classifier's probability
    uncertainty: float  # 1 at the threshold, falling with the distance in log-odds: 1 / (1 + |logit p − logit t|)
    novelty: float  # 1 − the largest similarity to a text picked before it
    value: float  # uncertainty × novelty, the order of the picks

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def rank_for_labelling(texts: Sequence[str], scores: Sequence[float], threshold: float, n: int = 20, *,
                       duplicate_similarity: float = DUPLICATE_SIMILARITY) -> list[Suggestion]:
    """Up to ``n`` texts to label next, best first (greedy: each pick maximises uncertainty × novelty)."""
    if len(texts) != len(scores):
        raise DataError(f"{len(texts)} texts but {len(scores)} scores")
    if not isinstance(n, int) or n < 1:
        raise DataError(f"n must be a whole number >= 1, got {n!r}")
    if not texts:
        return []
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).fit_transform(
        [t.strip() or "-" for t in texts])
    uncertainty = [1 / (1 + abs(_logit(s) - _logit(threshold))) for s in scores]
    closest = [0.0] * len(texts)  # largest similarity to any pick so far
    available = set(range(len(texts)))
    picks: list[Suggestion] = []
    while available and len(picks) < n:
        best = max(available, key=lambda i: (uncertainty[i] * (1 - closest[i]), -i))
        available.discard(best)
        picks.append(Suggestion(best, texts[best], float(scores[best]), uncertainty[best], 1 - closest[best],
                                uncertainty[best] * (1 - closest[best])))
        similarity = (vectors @ vectors[best].T).toarray().ravel()
        for i in list(available):
            closest[i] = max(closest[i], float(similarity[i]))
            if closest[i] >= duplicate_similarity:
                available.discard(i)
    return picks
