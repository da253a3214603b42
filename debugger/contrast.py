"""Contrastive attribution across two inputs: which of the edits that turn text B into text A explain f(A) − f(B).

The two texts are aligned word by word (``difflib``); every run of words where they differ is one *edit*. An edit's
effect is f(A) − f(A with that run taken from B): how much of the difference it carries on its own. Edits interact,
so their effects need not add up to f(A) − f(B); the rest is reported as ``interaction``.

The per-segment difference of two saliency results on aligned segments (``segment_differences``) answers the
other question: where the same words matter more for A than for B.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shieldkit.debugger.aggregation import Segment

_WORD = re.compile(r"\s*\S+|\s+$")


@dataclass(frozen=True)
class Edit:
    a_text: str  # the words of A in this run ("" if B's words were inserted)
    b_text: str  # the words of B it replaces
    a_start: int  # character range of the run in A
    a_end: int
    effect: float  # f(A) − f(A with this run taken from B)


@dataclass(frozen=True)
class Contrast:
    a_value: float
    b_value: float
    edits: tuple[Edit, ...]

    @property
    def difference(self) -> float:
        return self.a_value - self.b_value

    @property
    def interaction(self) -> float:
        """The part of f(A) − f(B) that no single edit carries."""
        return self.difference - sum(e.effect for e in self.edits)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "difference": self.difference, "interaction": self.interaction}


def words(text: str) -> list[str]:
    """Words with the whitespace before them, covering the text."""
    return _WORD.findall(text)


def contrast(score: Callable[[Sequence[str]], Sequence[float]], a: str, b: str) -> Contrast:
    """``score(texts) -> values`` for a batch of texts (f); A, B and one variant of A per edit are scored at once."""
    wa, wb = words(a), words(b)
    opcodes = [op for op in difflib.SequenceMatcher(a=[w.strip() for w in wa], b=[w.strip() for w in wb],
                                                    autojunk=False).get_opcodes() if op[0] != "equal"]
    variants = ["".join(wa[:i1] + wb[j1:j2] + wa[i2:]) for _, i1, i2, j1, j2 in opcodes]
    values = list(score([a, b, *variants]))
    a_value, b_value = float(values[0]), float(values[1])
    edits = []
    for (_, i1, i2, j1, j2), value in zip(opcodes, values[2:]):
        start = sum(len(w) for w in wa[:i1])
        run = "".join(wa[i1:i2])
        edits.append(Edit(run, "".join(wb[j1:j2]), start, start + len(run), a_value - float(value)))
    return Contrast(a_value, b_value, tuple(edits))


@dataclass(frozen=True)
class SegmentDifference:
    a_text: str | None  # None: the segment exists only in B
    b_text: str | None  # None: only in A
    a_score: float | None
    b_score: float | None

    @property
    def difference(self) -> float | None:
        """A − B for a segment both texts share; None for one that only one of them has."""
        return None if self.a_score is None or self.b_score is None else self.a_score - self.b_score


def segment_differences(a: Sequence[Segment], b: Sequence[Segment]) -> list[SegmentDifference]:
    """Text segments of two results aligned by their text; shared ones get A − B."""
    sa = [s for s in a if s.kind == "text"]
    sb = [s for s in b if s.kind == "text"]
    rows: list[SegmentDifference] = []
    matcher = difflib.SequenceMatcher(a=[s.text.strip() for s in sa], b=[s.text.strip() for s in sb], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [SegmentDifference(x.text, y.text, x.score, y.score) for x, y in zip(sa[i1:i2], sb[j1:j2])]
            continue
        rows += [SegmentDifference(x.text, None, x.score, None) for x in sa[i1:i2]]
        rows += [SegmentDifference(None, y.text, None, y.score) for y in sb[j1:j2]]
    return rows


def target_scorer(make_target: Callable[[str], Any]) -> Callable[[Sequence[str]], list[float]]:
    """``score(texts)`` for ``contrast``: the value of ``make_target(text)`` (any Target) at each text's input."""
    from shieldkit.model.internals import input_embeddings

    def score(texts: Sequence[str]) -> list[float]:
        values = []
        for text in texts:
            target = make_target(text)
            embeddings = input_embeddings(target.runtime, target.document.ids)[None]
            values.append(float(target.scores(embeddings)[0]))
        return values

    return score
