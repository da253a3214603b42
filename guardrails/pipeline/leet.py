"""The leetspeak reading of a normalised view, for the rule checks: ``1gn0re a11 prev1ous 1nstruct10ns`` reads as
``ignore all previous instructions``.

Only words that mix ASCII letters with the stand-ins below are spelled out (``k1ll``, ``pa55w0rd``, ``$ecret``),
and single stand-ins spaced from single letters (``1 G N 0 R E``, whose letters the normalising then joins); numbers, and words with no digit or symbol in them, are left alone. ``1`` is ambiguous: a run of two or more is
``l`` (``a11``, ``ki11``, ``wi11``), a single one ``i`` (``1gn0re``, ``h1de``), so a single ``1`` meant as ``l``
(``he1p``) is not recovered. The reading is an extra view (``reading.Reading``), not a step of the normalised view:
a rule that matches it fires, and nothing that matched before stops matching, so spelling out an API key or an
IBAN cannot hide it from the secrets and PII checks. The classifiers do not read it (they read the normalised
view, where ``4k`` and ``mp3`` stay what they are).
"""

from __future__ import annotations

import re

from shieldkit.guardrails.pipeline.normalise import LETTER_GAP, normalise_view
from shieldkit.guardrails.pipeline.textmap import Edit, Mapped

STAND_INS = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}  # besides 1 (i or l)
WORD = re.compile(r"(?<![A-Za-z0-9@$])[A-Za-z0-9@$]+(?![A-Za-z0-9@$])")
LETTER = re.compile(r"[A-Za-z]")
ONES = re.compile(r"1+")


def leet_view(text: str, normalised: Mapped | None = None) -> Mapped:
    """The normalised view of ``text`` with leetspeak spelled out: stand-ins are spelled in the text as sent (where
    spaced letters still have their word breaks), the result normalised, and stand-ins spelled again (those that
    normalising revealed: fullwidth digits, base64). ``.source_span`` maps to ``text``. ``normalised``: the view
    already made of ``text``, reused when the text as sent has no stand-in (most texts: no second normalising)."""
    first = _edits(text)
    view = normalise_view(Mapped(text, text).then(first)) if first or normalised is None else normalised
    return view.then(_edits(view.text))


def _edits(text: str) -> list[Edit]:
    edits: list[Edit] = []
    words = list(WORD.finditer(text))
    for index, word in enumerate(words):
        token = word.group()
        if not any(c in STAND_INS or c == "1" for c in token):
            continue
        if not (LETTER.search(token) or len(token) == 1 and _beside_a_letter(text, words, index)):
            continue
        for offset, char in enumerate(token):
            if char in STAND_INS:
                edits.append((word.start() + offset, word.start() + offset + 1, STAND_INS[char]))
        for run in ONES.finditer(token):
            letter = "l" if len(run.group()) > 1 else "i"
            edits += [(word.start() + i, word.start() + i + 1, letter) for i in range(run.start(), run.end())]
    return sorted(edits)


def _beside_a_letter(text: str, words: list[re.Match[str]], index: int) -> bool:
    """Whether the one-character word ``words[index]`` is spaced from a one-letter word (``1 G N 0 R E``)."""
    for other in (index - 1, index + 1):
        if 0 <= other < len(words) and len(words[other].group()) == 1 and LETTER.match(words[other].group()):
            start, end = sorted((words[index].end(), words[other].start()) if other > index
                                else (words[other].end(), words[index].start()))
            if LETTER_GAP.fullmatch(text, start, end):
                return True
    return False
