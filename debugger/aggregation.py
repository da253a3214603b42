"""Token scores summed into words, sentences or the matches of a custom regex.

The text is cut into ranges that cover it completely (whitespace goes with the word or sentence that follows it,
as SentencePiece attaches "▁" to the next word). Each text token joins the range holding its first non-space
character, so every token lands in exactly one segment and the segment scores add up to the token scores.
Control and template tokens (<bos>, <start_of_turn>) stay segments of their own. ``breaks`` are character offsets
no segment may span (where the prompt ends and the continuation begins, the edges of the explained span), so a
word or sentence is never both part of the target and a source of it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from shieldkit.errors import ConfigError

SegmentKind = Literal["text", "gap", "control", "outside"]


class ScoredToken(Protocol):
    index: int
    piece: str
    start: int
    end: int
    kind: str
    score: float


@dataclass(frozen=True)
class Segment:
    text: str  # the characters of the segment (for control tokens: the piece)
    start: int  # character range [start, end) in the text; empty for control tokens
    end: int
    score: float  # sum of its tokens' scores
    tokens: tuple[int, ...]  # token positions
    kind: SegmentKind  # text; gap (whitespace, or outside a regex's matches); control; outside

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "tokens": list(self.tokens)}


# granularity -> ranges (start, end, kind) covering the text; None = one segment per token
_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"[.!?…。！？]+[\"'”’»)\]]*(?=\s|$)|\n+")


def _word_ranges(text: str, pattern: str | None) -> list[tuple[int, int, SegmentKind]]:
    return _cut_before(text, [m.end() for m in _WORD.finditer(text)])


def _sentence_ranges(text: str, pattern: str | None) -> list[tuple[int, int, SegmentKind]]:
    return _cut_before(text, [m.end() for m in _SENTENCE_END.finditer(text)])


def _regex_ranges(text: str, pattern: str | None) -> list[tuple[int, int, SegmentKind]]:
    if not pattern:
        raise ConfigError("granularity 'regex' needs a pattern")
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"invalid regex {pattern!r}: {exc}") from None
    ranges: list[tuple[int, int, SegmentKind]] = []
    cursor = 0
    for match in compiled.finditer(text):
        if match.end() == match.start():
            continue
        if match.start() > cursor:
            ranges.append((cursor, match.start(), "gap"))
        ranges.append((match.start(), match.end(), "text"))
        cursor = match.end()
    if cursor < len(text) or not ranges:
        ranges.append((cursor, len(text), "gap"))
    return ranges


def _cut_before(text: str, ends: list[int]) -> list[tuple[int, int, SegmentKind]]:
    """Ranges ending at each of ``ends``, then the rest of the text; whitespace-only ranges are gaps."""
    ranges: list[tuple[int, int, SegmentKind]] = []
    cursor = 0
    for end in ends:
        if end > cursor:
            ranges.append((cursor, end, "text" if text[cursor:end].strip() else "gap"))
            cursor = end
    if cursor < len(text) or not ranges:
        ranges.append((cursor, len(text), "text" if text[cursor:].strip() else "gap"))
    return ranges


GRANULARITIES: dict[str, Callable[[str, str | None], list[tuple[int, int, SegmentKind]]] | None] = {
    "tokens": None,
    "words": _word_ranges,
    "sentences": _sentence_ranges,
    "regex": _regex_ranges,
}


def _split_at(text: str, ranges: list[tuple[int, int, SegmentKind]], breaks: Sequence[int]) -> list[tuple[int, int, SegmentKind]]:
    """``ranges`` cut at every offset in ``breaks`` that falls strictly inside one of them."""
    cuts = sorted(set(breaks))
    result: list[tuple[int, int, SegmentKind]] = []
    for start, end, kind in ranges:
        edges = [start, *(b for b in cuts if start < b < end), end]
        for left, right in zip(edges, edges[1:]):
            result.append((left, right, kind if kind == "gap" or text[left:right].strip() else "gap"))
    return result


def aggregate(tokens: Sequence[ScoredToken], text: str, granularity: str = "tokens", pattern: str | None = None,
              breaks: Sequence[int] = ()) -> list[Segment]:
    """Segments in reading order; their scores sum to the tokens' scores. No segment spans an offset in ``breaks``."""
    if granularity not in GRANULARITIES:
        raise ConfigError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    cut = GRANULARITIES[granularity]
    if cut is None:
        return [_token_segment(token, text) for token in tokens]
    ranges = _split_at(text, cut(text, pattern), breaks)
    starts = [start for start, _, _ in ranges]
    members: dict[tuple[str, int], list[ScoredToken]] = {}  # insertion order = reading order
    for token in tokens:
        if token.kind != "text":
            members[("token", token.index)] = [token]
            continue
        slot = max(0, bisect.bisect_right(starts, _anchor(token, text)) - 1)
        members.setdefault(("range", slot), []).append(token)
    segments = []
    for (what, key), group in members.items():
        if what == "token":
            segments.append(_token_segment(group[0], text))
            continue
        start, end, kind = ranges[key]
        segments.append(Segment(text[start:end], start, end, sum(t.score for t in group), tuple(t.index for t in group), kind))
    return segments


def _token_segment(token: ScoredToken, text: str) -> Segment:
    shown = text[token.start : token.end] if token.end > token.start else token.piece
    kind: SegmentKind = token.kind if token.kind in ("control", "outside") else "text"  # type: ignore[assignment]
    return Segment(shown, token.start, token.end, token.score, (token.index,), kind)


def _anchor(token: ScoredToken, text: str) -> int:
    """The character that decides a token's range: its first non-space one (a piece's "▁" belongs to the next
    word), else its start; an empty span (a partial byte) sits on the character it helps complete."""
    for position in range(token.start, token.end):
        if not text[position].isspace():
            return position
    return min(token.start, max(len(text) - 1, 0))
