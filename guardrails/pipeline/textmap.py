"""Text rewritten in steps, with a map from every character of the result back to the part of the source it came
from -- so a match found in a rewritten (normalised) text can be located, and redacted, in the original.

:func:`rewrite` applies one step: sorted, non-overlapping edits ``(start, end, replacement)``; everything between
edits is copied. The :class:`Layer` it returns maps a range of the result back to a range of that step's input;
a :class:`Mapped` text keeps the layers of all its steps and maps a range of the final text to the source.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

Edit = tuple[int, int, str]  # replace source[start:end] with the text (empty text: drop the span)


@dataclass(frozen=True)
class Layer:
    """One step. The result is a concatenation of pieces; piece k is ``out_starts[k]`` onwards and came from
    ``in_starts[k]:in_ends[k]`` of the step's input. An aligned piece came character by character (same length);
    any other piece as a whole. Empty pieces (dropped spans) are not stored."""

    out_starts: tuple[int, ...]
    in_starts: tuple[int, ...]
    in_ends: tuple[int, ...]
    aligned: tuple[bool, ...]

    def back(self, start: int, end: int) -> tuple[int, int]:
        """The input range that result characters ``start:end`` came from (``start < end``)."""
        first = bisect_right(self.out_starts, start) - 1
        last = bisect_right(self.out_starts, end - 1) - 1
        source_start = self.in_starts[first] + (start - self.out_starts[first] if self.aligned[first] else 0)
        if self.aligned[last]:
            source_end = self.in_starts[last] + (end - 1 - self.out_starts[last]) + 1
        else:
            source_end = self.in_ends[last]
        return source_start, source_end


def rewrite(source: str, edits: Iterable[Edit]) -> tuple[str, Layer | None]:
    """``source`` with the edits applied, and the layer mapping the result back (None when nothing changed)."""
    pieces: list[str] = []
    out_starts: list[int] = []
    in_starts: list[int] = []
    in_ends: list[int] = []
    aligned: list[bool] = []
    cursor = produced = 0
    changed = False

    def emit(text: str, start: int, end: int, is_aligned: bool) -> None:
        nonlocal produced
        if not text:
            return
        pieces.append(text)
        out_starts.append(produced)
        in_starts.append(start)
        in_ends.append(end)
        aligned.append(is_aligned)
        produced += len(text)

    for start, end, replacement in edits:
        if start < cursor or end < start:
            raise ValueError(f"edits must be sorted and must not overlap (got {start}:{end} after {cursor})")
        if replacement == source[start:end]:
            continue
        changed = True
        emit(source[cursor:start], cursor, start, True)
        emit(replacement, start, end, len(replacement) == end - start)
        cursor = end
    if not changed:
        return source, None
    emit(source[cursor:], cursor, len(source), True)
    return "".join(pieces), Layer(tuple(out_starts), tuple(in_starts), tuple(in_ends), tuple(aligned))


@dataclass(frozen=True)
class Mapped:
    """A text derived from ``source`` by the steps whose layers are kept, oldest first."""

    source: str
    text: str
    layers: tuple[Layer, ...] = ()

    def then(self, edits: Iterable[Edit]) -> Mapped:
        """This text with one more step applied."""
        text, layer = rewrite(self.text, edits)
        return self if layer is None else Mapped(self.source, text, (*self.layers, layer))

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The range of ``source`` that characters ``start:end`` of ``text`` came from. An empty range maps to the
        source position of its first character's origin (or the source's end)."""
        if not 0 <= start <= end <= len(self.text):
            raise ValueError(f"range {start}:{end} is outside the text (length {len(self.text)})")
        if start == end:
            if start == len(self.text):
                return len(self.source), len(self.source)
            origin = self.source_span(start, start + 1)[0]
            return origin, origin
        for layer in reversed(self.layers):
            start, end = layer.back(start, end)
        return start, end
