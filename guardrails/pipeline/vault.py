"""Typed placeholders for redacted text, and their restoration, scoped to one request.

A :class:`Vault` is created per request and dropped with it; nothing is shared between requests. The same value
gets the same placeholder within a request (``<EMAIL_1>`` twice for the same address), so the model can still refer
to it. A value is restorable when a check with ``restore: true`` redacted it from a message whose role the check's
``restore_roles`` lists. Restoring gives a user back only what that user sent: restorable values found in ``user``
messages are put back after the output checks passed (:meth:`Vault.restore`); restorable values from other roles
(an app that lists ``system`` in ``restore_roles``) are put back before the output checks
(:meth:`Vault.restore_unsent`), so the checks judge them like any other text of the answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shieldkit.guardrails.checks.base import Finding

PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")


class Vault:
    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._restorable: set[str] = set()
        self._user_sent: set[str] = set()  # placeholders of values found in the user's own messages
        self._counts: dict[str, int] = {}

    def placeholder(self, label: str, value: str, *, restore: bool, role: str | None) -> str:
        """The placeholder of ``value``; ``role``: the chat role of the text it was found in (None: no message, e.g.
        the model's answer)."""
        key = (label, value)
        token = self._by_value.get(key)
        if token is None:
            self._counts[label] = self._counts.get(label, 0) + 1
            token = f"<{label}_{self._counts[label]}>"
            self._by_value[key] = token
            self._originals[token] = value
        if restore:
            self._restorable.add(token)
        if role == "user":
            self._user_sent.add(token)
        return token

    def redact(self, text: str, spans: Sequence[tuple[Finding, bool]], *, role: str | None) -> str:
        """Replace non-overlapping ``(finding, restore)`` spans (sorted by start) with placeholders."""
        pieces, cursor = [], 0
        for finding, restore in spans:
            pieces.append(text[cursor:finding.start])
            pieces.append(self.placeholder(finding.label, text[finding.start:finding.end], restore=restore, role=role))
            cursor = finding.end
        pieces.append(text[cursor:])
        return "".join(pieces)

    def restore(self, text: str) -> str:
        """Put back the restorable values the user sent; other placeholders (and unknown look-alikes) stay."""
        return self._put_back(text, self._restorable & self._user_sent)

    def restore_unsent(self, text: str) -> str:
        """Put back the restorable values the user did not send (for the output checks to judge)."""
        return self._put_back(text, self._restorable - self._user_sent)

    def _put_back(self, text: str, tokens: set[str]) -> str:
        if not tokens:
            return text
        return PLACEHOLDER.sub(lambda m: self._originals[m.group()] if m.group() in tokens else m.group(), text)

    def __len__(self) -> int:
        return len(self._originals)
