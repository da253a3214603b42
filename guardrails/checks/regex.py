"""``kind: regex``: fires when any of the patterns matches; can redact the matches."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from shieldkit.guardrails.checks.base import BuildContext, CheckConfig, CheckKind, Finding, ScanResult
from shieldkit.guardrails.checks.holds import GrowingPattern, Hold, merge
from shieldkit.guardrails.policy.fields import FieldError, require


@dataclass(frozen=True, kw_only=True)
class RegexConfig(CheckConfig):
    patterns: tuple[str, ...]  # Python regular expressions; any match fires the check
    ignore_case: bool = True  # match regardless of letter case
    label: str | None = None  # placeholder type when redacting, e.g. SECRET -> <SECRET_1> (default: the name)

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.patterns), "patterns", "must list at least one pattern")
        for index, pattern in enumerate(self.patterns):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise FieldError(("patterns", index), f"is not a valid regular expression: {exc}") from None
            if compiled.match(""):
                raise FieldError(("patterns", index), f"{pattern!r} matches empty text, so it would fire on everything")
            if _min_width(pattern) == 0:  # e.g. only lookaheads: every match would be empty, and never fire
                raise FieldError(("patterns", index), f"{pattern!r} can only match empty text (a lookahead or "
                                 "anchors alone), so it would never fire; match at least one character")
        require(self.label is None or bool(re.fullmatch(r"[A-Z][A-Z0-9_]*", self.label)), "label",
                f"must be capital letters, digits and '_', got {self.label!r}")


def placeholder_label(config: CheckConfig, label: str | None) -> str:
    return label or re.sub(r"[^A-Z0-9_]", "_", config.name.upper())


def _min_width(pattern: str) -> int:
    """The fewest characters a match of ``pattern`` can span (``re``'s own parser; private, stable since 3.11)."""
    return re._parser.parse(pattern).getwidth()[0]


class PatternScanner:
    """Findings of a check's patterns, each compiled and matched on its own: joined into one alternation, group
    numbers would shift (a backreference ``\\1`` of the second pattern would point into the first) and an inline
    flag such as ``(?i)`` would no longer start its expression. Overlapping findings of different patterns are
    merged by the redaction."""

    def __init__(self, patterns: Sequence[re.Pattern[str]], label: str) -> None:
        self.patterns = tuple(patterns)
        self.label = label
        self.growing = tuple(GrowingPattern(pattern) for pattern in self.patterns)

    async def scan(self, texts: Sequence[str]) -> list[ScanResult]:
        results = []
        for text in texts:
            spans = sorted({m.span() for p in self.patterns for m in p.finditer(text) if m.end() > m.start()})
            findings = tuple(Finding(start, end, self.label) for start, end in spans)
            results.append(ScanResult(score=1.0 if findings else 0.0, fired=bool(findings), findings=findings))
        return results

    def hold(self, text: str) -> Hold:
        return merge((growing.hold(text) for growing in self.growing), len(text))


def build(config: RegexConfig, context: BuildContext) -> PatternScanner:
    flags = re.IGNORECASE if config.ignore_case else 0
    return PatternScanner([re.compile(p, flags) for p in config.patterns], placeholder_label(config, config.label))


KIND = CheckKind("regex", RegexConfig, build, summary="fires when a regular expression matches")
