"""Typed placeholders for redacted text, and their restoration, scoped to one request.

A :class:`Vault` is created per request and dropped with it; nothing is shared between requests. The same value
gets the same placeholder within a request (``<EMAIL_1>`` twice for the same address), so the model can still refer
to it; values from checks with ``restore: true`` are put back into the response after the output checks passed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shieldkit.guardrails.checks.base import Finding

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")
# A placeholder that may still be growing at the end of a stream piece: "<", "<EMA", "<EMAIL_1".
PARTIAL_PLACEHOLDER = re.compile(r"<[A-Z0-9_]*$")


class Vault:
    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._restorable: set[str] = set()
        self._counts: dict[str, int] = {}

    def placeholder(self, label: str, value: str, *, restore: bool) -> str:
        key = (label, value)
        token = self._by_value.get(key)
        if token is None:
            self._counts[label] = self._counts.get(label, 0) + 1
            token = f"<{label}_{self._counts[label]}>"
            self._by_value[key] = token
            self._originals[token] = value
        if restore:
            self._restorable.add(token)
        return token

    def redact(self, text: str, spans: Sequence[tuple[Finding, bool]]) -> str:
        """Replace non-overlapping ``(finding, restore)`` spans (sorted by start) with placeholders."""
        pieces, cursor = [], 0
        for finding, restore in spans:
            pieces.append(text[cursor:finding.start])
            pieces.append(self.placeholder(finding.label, text[finding.start:finding.end], restore=restore))
            cursor = finding.end
        pieces.append(text[cursor:])
        return "".join(pieces)

    def restore(self, text: str) -> str:
        """Put back the originals of restorable placeholders; others (and unknown look-alikes) stay as they are."""
        if not self._restorable:
            return text
        return PLACEHOLDER.sub(lambda m: self._originals[m.group()] if m.group() in self._restorable else m.group(), text)

    def __len__(self) -> int:
        return len(self._originals)
