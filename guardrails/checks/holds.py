"""Where text that is still growing (a stream held back by the proxy) may be cut without splitting a match.

A streamed answer is checked window by window, so a redact check only ever sees text up to a cut. A cut is safe
when no match lies across it: not a complete match, and not a match that more text could still produce or
lengthen (``sk-proj-abc`` becomes a key, ``ann@example.co`` may go on to ``.uk``). :class:`GrowingPattern` answers
both with the ``regex`` package's partial matching: ``P(?!)`` can never match, so a partial search for it finds the
earliest position from which some way of matching ``P`` runs into the end of the text. That is conservative (it
also counts ways the real match would never take) and never too late, which is what a leak-free cut needs.

Scanners of checks that can redact implement :class:`Holding`; the stream's window cutter asks all of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import regex

from shieldkit.errors import ConfigError

# The ``re`` flags a pattern may carry, and their ``regex`` equivalents (ASCII has another value there).
_FLAGS = ((re.IGNORECASE, regex.IGNORECASE), (re.MULTILINE, regex.MULTILINE), (re.DOTALL, regex.DOTALL),
          (re.VERBOSE, regex.VERBOSE), (re.ASCII, regex.ASCII))
Span = tuple[int, int]


@dataclass(frozen=True)
class Hold:
    """Where a text may not be cut yet: strictly inside a complete match (``spans``), or after ``open_from``, where a
    match may still start or grow as more text arrives."""

    open_from: int
    spans: tuple[Span, ...] = ()

    def allows(self, cut: int) -> bool:
        return cut <= self.open_from and not any(start < cut < end for start, end in self.spans)

    def last_allowed(self, limit: int) -> int:
        """The largest cut at or before ``limit`` that this hold allows (0 if none)."""
        cut = min(limit, self.open_from)
        while cut > 0:
            inside = [start for start, end in self.spans if start < cut < end]
            if not inside:
                return cut
            cut = min(inside)
        return 0

    def shifted(self, offset: int) -> Hold:
        """This hold for the text from ``offset`` on (spans before it dropped, positions clipped at 0)."""
        spans = tuple((max(start - offset, 0), end - offset) for start, end in self.spans if end > offset)
        return Hold(max(self.open_from - offset, 0), spans)


def merge(holds: Iterable[Hold], length: int) -> Hold:
    """One hold that allows a cut only where every one of ``holds`` does (``length``: the text's length)."""
    open_from, spans = length, []
    for hold in holds:
        open_from = min(open_from, hold.open_from)
        spans.extend(hold.spans)
    return Hold(open_from, tuple(span for span in spans if span[0] < open_from))


@runtime_checkable
class Holding(Protocol):
    def hold(self, text: str) -> Hold:
        """Where ``text``, which may still grow at its end, must not be cut (see :class:`Hold`)."""


class GrowingPattern:
    """A compiled ``re`` pattern, matched against text that may still grow."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        flags = sum(theirs for ours, theirs in _FLAGS if pattern.flags & ours)
        try:
            self.full = regex.compile(pattern.pattern, flags)
            self.any_path = regex.compile(f"(?:{pattern.pattern})(?!)", flags)
        except regex.error as exc:
            raise ConfigError(f"the pattern {pattern.pattern!r} cannot be matched on streamed text: {exc}") from None

    def settled(self, text: str) -> tuple[list[regex.Match], int]:
        """The matches (in ``finditer`` order) that no continuation of ``text`` can change, and the position from
        which matches are not settled yet (``len(text)``: all are)."""
        matches, pos, open_from = [], 0, self._open_from(text, 0)
        while True:
            if pos > open_from:
                open_from = self._open_from(text, pos)
            found = self.full.search(text, pos)
            if found is None or found.start() >= open_from:
                return matches, open_from
            if found.end() == len(text):  # e.g. a trailing \b, which the next character may break
                return matches, found.start()
            matches.append(found)
            pos = found.end() if found.end() > found.start() else found.end() + 1

    def hold(self, text: str, accept: Callable[[regex.Match], bool] = lambda match: True) -> Hold:
        """The hold of this pattern's matches (``accept``: which complete matches count, e.g. validated ones)."""
        matches, open_from = self.settled(text)
        return Hold(open_from, tuple(m.span() for m in matches if accept(m)))

    def _open_from(self, text: str, pos: int) -> int:
        growing = self.any_path.search(text, pos, partial=True)
        return growing.start() if growing is not None and growing.start() < len(text) else len(text)
