"""What a check reads of a request's texts, and where its findings lie in the texts the model gets.

A check kind says what it reads (``CheckKind.reads``):

- ``normalised``: the normalised views (:mod:`~shieldkit.guardrails.pipeline.normalise`). Consecutive messages with the
  same role are read as one view (joined by a line break), so a phrase split across two user messages, or across
  two text parts of one message, is still one phrase.
- ``original``: each text exactly as sent (a check looking for the disguises themselves).
- ``both``: the originals, the views, and the views with leetspeak spelled out (rule checks: a pattern written
  for the original text -- a newline, a non-ASCII literal, an anchor -- keeps matching what it matched before,
  and disguised text is caught too; :mod:`~shieldkit.guardrails.pipeline.leet`). A view identical to what is
  already read is read once.

Every finding is mapped back to the original texts, so redaction replaces what the model would have seen,
including the invisible characters and look-alike letters inside a match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from shieldkit.guardrails.checks.base import Reads
from shieldkit.guardrails.pipeline.leet import leet_view
from shieldkit.guardrails.pipeline.normalise import normalise
from shieldkit.guardrails.pipeline.textmap import Mapped

JOIN = "\n"  # between the messages of one view


@dataclass(frozen=True)
class Unit:
    """One text a check scans: an original message, or the view of a run of messages."""

    text: str
    messages: tuple[int, ...]  # indices of the messages it covers
    bases: tuple[int, ...]  # where each message starts in the joined source
    lengths: tuple[int, ...]  # and how long it is
    view: Mapped | None = None  # None: ``text`` is the original of its single message

    def locate(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """``(message, start, end)`` ranges of the original texts that ``text[start:end]`` came from."""
        if self.view is None:
            return [(self.messages[0], start, end)] if end > start else []
        source_start, source_end = self.view.source_span(start, end)
        ranges = []
        for message, base, length in zip(self.messages, self.bases, self.lengths):
            low, high = max(source_start, base), min(source_end, base + length)
            if high > low:
                ranges.append((message, low - base, high - base))
        return ranges


class Reading:
    """The units of one set of texts (built lazily, shared by every check that runs on these texts)."""

    def __init__(self, texts: Sequence[str], roles: Sequence[str] | None = None) -> None:
        self.texts = list(texts)
        self.roles = list(roles) if roles is not None else None

    @cached_property
    def groups(self) -> list[tuple[int, ...]]:
        """Runs of consecutive messages with the same role (each text alone when there are no roles)."""
        if self.roles is None:
            return [(i,) for i in range(len(self.texts))]
        groups: list[list[int]] = []
        for index, role in enumerate(self.roles):
            if groups and self.roles[groups[-1][-1]] == role:
                groups[-1].append(index)
            else:
                groups.append([index])
        return [tuple(g) for g in groups]

    @cached_property
    def views(self) -> dict[tuple[int, ...], Unit]:
        units = {}
        for group in self.groups:
            bases, cursor = [], 0
            for index in group:
                bases.append(cursor)
                cursor += len(self.texts[index]) + len(JOIN)
            view = normalise(JOIN.join(self.texts[i] for i in group))
            units[group] = Unit(view.text, group, tuple(bases), tuple(len(self.texts[i]) for i in group), view)
        return units

    @cached_property
    def leet_views(self) -> dict[tuple[int, ...], Unit]:
        """The views with leetspeak spelled out, where that changed them."""
        units = {}
        for group, unit in self.views.items():
            view = leet_view(unit.view.source, unit.view)
            if view.text != unit.text:
                units[group] = Unit(view.text, unit.messages, unit.bases, unit.lengths, view)
        return units

    def units(self, reads: Reads, roles: Sequence[str] = ()) -> list[Unit]:
        """What a check reading ``reads``, limited to ``roles`` (empty: every message), scans."""
        groups = [g for g in self.groups if not roles or self.roles is None or self.roles[g[0]] in roles]
        originals = [Unit(self.texts[i], (i,), (0,), (len(self.texts[i]),)) for g in groups for i in g]
        if reads == "original":
            return originals
        views = [self.views[g] for g in groups]
        if reads == "normalised":
            return views
        distinct = [view for g, view in zip(groups, views) if len(g) > 1 or view.text != self.texts[g[0]]]
        return originals + distinct + [self.leet_views[g] for g in groups if g in self.leet_views]
