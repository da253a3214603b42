"""Where held-back streamed text may be cut into a checked window.

Cuts fall only at sentence ends or at whitespace (never inside a word, a number or a placeholder), so a card
number, an email address or ``<EMAIL_1>`` reaches the checks whole, in one window.
"""

from __future__ import annotations

import re

from shieldkit.guardrails.policy.schema import StreamConfig
from shieldkit.guardrails.vault import PARTIAL_PLACEHOLDER

SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]]*\s+|\n+")
# Whitespace between two digits may be inside a card or phone number: not a cut point.
SAFE_SPACE = re.compile(r"(?<!\d)\s+|\s+(?!\d)")


class WindowCutter:
    def __init__(self, config: StreamConfig) -> None:
        self.config = config

    def cut(self, pending: str, pieces: int, *, final: bool = False) -> int:
        """How many leading characters of ``pending`` (``pieces`` upstream tokens) to check and release now."""
        if final:
            return len(pending)
        limit = self.config.tokens
        if self.config.window == "sentence":
            last = None
            for last in SENTENCE_END.finditer(pending):
                pass
            if last is not None and last.end() > 0:
                return last.end()
            if pieces < limit:
                return 0
        elif pieces < limit:
            return 0
        return self._forced(pending, pieces >= 2 * limit)

    @staticmethod
    def _forced(pending: str, desperate: bool) -> int:
        """The window is full: cut at the last safe whitespace; with none for twice the window, cut anyway (but not
        inside a placeholder that may still be growing)."""
        cut = 0
        for match in SAFE_SPACE.finditer(pending):
            at_end = match.end() == len(pending)
            if not (at_end and match.start() > 0 and pending[match.start() - 1].isdigit()):  # "4111 " may go on
                cut = match.end()
        if cut or not desperate:
            return cut
        partial = PARTIAL_PLACEHOLDER.search(pending)
        return partial.start() if partial else len(pending)
