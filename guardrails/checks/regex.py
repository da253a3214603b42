"""``kind: regex``: fires when any of the patterns matches; can redact the matches."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from shieldkit.guardrails.checks.base import BuildContext, CheckConfig, CheckKind, Finding, ScanResult
from shieldkit.guardrails.checks.holds import GrowingPattern, Hold
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
        require(self.label is None or bool(re.fullmatch(r"[A-Z][A-Z0-9_]*", self.label)), "label",
                f"must be capital letters, digits and '_', got {self.label!r}")


def placeholder_label(config: CheckConfig, label: str | None) -> str:
    return label or re.sub(r"[^A-Z0-9_]", "_", config.name.upper())


class PatternScanner:
    """Findings of one compiled pattern (an alternation of all the check's patterns)."""

    def __init__(self, pattern: re.Pattern[str], label: str) -> None:
        self.pattern = pattern
        self.label = label
        self.growing = GrowingPattern(pattern)

    async def scan(self, texts: Sequence[str]) -> list[ScanResult]:
        results = []
        for text in texts:
            findings = tuple(Finding(m.start(), m.end(), self.label) for m in self.pattern.finditer(text) if m.end() > m.start())
            results.append(ScanResult(score=1.0 if findings else 0.0, fired=bool(findings), findings=findings))
        return results

    def hold(self, text: str) -> Hold:
        return self.growing.hold(text)


def build(config: RegexConfig, context: BuildContext) -> PatternScanner:
    flags = re.IGNORECASE if config.ignore_case else 0
    combined = re.compile("|".join(f"(?:{p})" for p in config.patterns), flags)
    return PatternScanner(combined, placeholder_label(config, config.label))


KIND = CheckKind("regex", RegexConfig, build, summary="fires when a regular expression matches")
