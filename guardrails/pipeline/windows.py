"""Where held-back streamed text may be cut into a checked window.

A cut falls at a sentence end; once ``tokens`` pieces piled up without one, at whitespace; after twice that, anywhere.
The first window uses ``first_tokens`` instead, so a reader sees the answer start after a few tokens, not a sentence;
the windows after it check it again as their context.
But never where a redact check's match lies across it, complete or still growing (``sk-proj-a`` that becomes a key,
``+1 (415)`` that becomes a phone number, a private key block whose END line has not come yet), nor inside a
placeholder (see ``checks/holds.py``). So a secret, a PII value or ``<EMAIL_1>`` reaches the checks whole, in one
window. Text that cannot be cut safely is held; past ``hold_chars`` the stream refuses the rest instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from shieldkit.guardrails.checks.holds import GrowingPattern, Hold, Holding, merge
from shieldkit.guardrails.pipeline.engine import Guard
from shieldkit.guardrails.pipeline.vault import PLACEHOLDER
from shieldkit.guardrails.policy.schema import StreamConfig

SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u201d\u2019)\]]*\s+|\n+")
WHITESPACE = re.compile(r"\s+")
PLACEHOLDERS = GrowingPattern(PLACEHOLDER)


def redact_holders(guard: Guard) -> list[Holding]:
    """The scanners of ``guard``'s redact checks, which say where streamed text may be cut."""
    holders = []
    for check in guard.checks:
        if check.config.action != "redact":
            continue
        if not isinstance(check.scanner, Holding):
            raise TypeError(f"the redact check '{check.config.name}' cannot say where streamed text may be cut")
        holders.append(check.scanner)
    return holders


class WindowCutter:
    def __init__(self, config: StreamConfig, holders: Sequence[Holding] = ()) -> None:
        self.config = config
        self.holders = tuple(holders)

    def cut(self, pending: str, pieces: int, *, context: str = "", final: bool = False) -> int:
        """How many leading characters of ``pending`` (``pieces`` upstream tokens, after the released ``context``) to
        check and release now; 0 holds it all."""
        if final:
            return len(pending)
        over = self.over_cap(pending)
        limit = self.config.tokens
        if not context and self.config.first_tokens:
            limit = min(limit, self.config.first_tokens)
        ends = [m.end() for m in SENTENCE_END.finditer(pending)] if self.config.window == "sentence" else []
        if not ends and pieces < limit and not over:
            return 0  # nothing to cut yet: skip the hold
        hold = self.hold(context, pending)
        ends = [end for end in ends if hold.allows(end)]
        if ends:
            return ends[-1]
        if pieces < limit and not over:
            return 0
        spaces = [m.end() for m in WHITESPACE.finditer(pending) if hold.allows(m.end())]
        if spaces:
            return spaces[-1]
        if pieces >= 2 * limit or over:
            return hold.last_allowed(len(pending))
        return 0

    def over_cap(self, pending: str) -> bool:
        """More is held than the policy allows: what cannot be cut safely now must be refused."""
        return len(pending) > self.config.hold_chars

    def hold(self, context: str, pending: str) -> Hold:
        """Where ``pending`` must not be cut, judged on the text the checks will see (``context`` + ``pending``)."""
        text = context + pending
        holds = [holder.hold(text) for holder in self.holders] + [PLACEHOLDERS.hold(text)]
        return merge(holds, len(text)).shifted(len(context))
