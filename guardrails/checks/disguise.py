"""``kind: disguise``: fires on the marks of disguised text, read in the original (the normalised view, which the
other checks read, no longer has them).

Signals (``signals:``, default all):

- ``tag_characters``: invisible Unicode tag characters (U+E0000-E007F), which can spell a hidden ASCII message
  ("ASCII smuggling"). The tag sequences of subdivision flag emoji (🏴 + tags + U+E007F, e.g. Scotland's) are fine.
- ``bidi_controls``: bidirectional embeddings, overrides and isolates (U+202A-202E, U+2066-2069), which make text
  display in another order than it is read ("Trojan Source"). The marks U+200E/200F of right-to-left text are fine.
- ``invisible_in_words``: a zero-width character (space, joiner, non-joiner, word joiner, BOM) between two Latin,
  Greek or Cyrillic letters, where it has no use but splitting a word for filters. Between letters of scripts that
  need joiners (Persian, Devanagari, ...) and in emoji sequences it is fine.
- ``mixed_script``: a word mixing Latin letters with look-alikes from another script (``іgnоrе`` with Cyrillic
  і, о, е), or a word made only of three or more look-alikes next to a Latin word. Words wholly in one script are
  fine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from shieldkit.guardrails.checks.base import BuildContext, CheckConfig, CheckKind, Finding, ScanResult
from shieldkit.guardrails.pipeline.normalise import lookalike_words, script
from shieldkit.guardrails.policy.fields import require

Signal = Literal["tag_characters", "bidi_controls", "invisible_in_words", "mixed_script"]
SIGNALS: tuple[Signal, ...] = ("tag_characters", "bidi_controls", "invisible_in_words", "mixed_script")
TAGS = re.compile("[\U000e0000-\U000e007f]+")
FLAG_TAGS = re.compile("\U0001f3f4[\U000e0020-\U000e007e]{1,16}\U000e007f")  # 🏴 + subdivision code + cancel tag
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]+")
ZERO_WIDTH = re.compile("(?<=[^\\W\\d_])[\u200b\u200c\u200d\u2060\ufeff]+(?=[^\\W\\d_])")
SPLIT_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC"})  # scripts in which a zero-width character has no use


@dataclass(frozen=True, kw_only=True)
class DisguiseConfig(CheckConfig):
    signals: tuple[Signal, ...] = SIGNALS  # which marks of disguise fire the check

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.signals), "signals", f"must list at least one of {', '.join(SIGNALS)}")


class DisguiseScanner:
    def __init__(self, signals: tuple[Signal, ...]) -> None:
        self.signals = frozenset(signals)

    async def scan(self, texts: Sequence[str]) -> list[ScanResult]:
        results = []
        for text in texts:
            findings = tuple(sorted(self.find(text), key=lambda f: f.start))
            results.append(ScanResult(score=1.0 if findings else 0.0, fired=bool(findings), findings=findings))
        return results

    def find(self, text: str) -> list[Finding]:
        found = []
        if "tag_characters" in self.signals:
            flags = [m.span() for m in FLAG_TAGS.finditer(text)]
            found += [Finding(m.start(), m.end(), "TAG_CHARACTERS") for m in TAGS.finditer(text)
                      if not any(start < m.start() and m.end() <= end for start, end in flags)]
        if "bidi_controls" in self.signals:
            found += [Finding(m.start(), m.end(), "BIDI_CONTROLS") for m in BIDI.finditer(text)]
        if "invisible_in_words" in self.signals:
            found += [Finding(m.start(), m.end(), "INVISIBLE_IN_WORD") for m in ZERO_WIDTH.finditer(text)
                      if script(text[m.start() - 1]) in SPLIT_SCRIPTS and script(text[m.end()]) in SPLIT_SCRIPTS]
        if "mixed_script" in self.signals:
            found += [Finding(start, end, "MIXED_SCRIPT") for start, end in lookalike_words(text)]
        return found


def build(config: DisguiseConfig, context: BuildContext) -> DisguiseScanner:
    return DisguiseScanner(config.signals)


KIND = CheckKind(
    "disguise", DisguiseConfig, build, actions=frozenset({"block", "flag"}), reads="original",
    summary="fires on invisible tag characters, bidi controls, zero-width characters inside words, mixed-script words",
)
