"""``kind: classifier``: a safety classifier (a default one such as ``hate``, or a trained classifier folder).

All classifier checks ask one shared scorer (``guardrails/scoring``), which resolves the reference, chooses the
threshold and batches the checks of one request (and of concurrent requests) into shared classifier passes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from shieldkit.guardrails.checks.base import BuildContext, CheckConfig, CheckKind, ScanResult
from shieldkit.guardrails.policy.fields import require


@dataclass(frozen=True, kw_only=True)
class ClassifierConfig(CheckConfig):
    classifier: str  # a default classifier's name (hate, violence, ...) or a saved classifier folder (relative to this file)
    threshold: float | None = None  # flag at score >= threshold; default: the classifier's calibrated threshold

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.classifier.strip()), "classifier", "must name a default classifier or a classifier folder")
        require(self.threshold is None or 0.0 <= self.threshold <= 1.0, "threshold",
                f"must be between 0 and 1, got {self.threshold!r}")


# What a classifier reads in place of a redaction placeholder. The classifiers never saw "<EMAIL_1>" in training and
# read such markup as injected instructions (prompt_injection fired on "Reply to <EMAIL_1> about her card
# <CREDIT_CARD_1>."), so they get a plausible made-up value of the same type; other labels become their name.
SURROGATES = {
    "EMAIL": "sam@example.com",
    "PHONE": "555-0100",
    "CREDIT_CARD": "4000 0000 0000 0002",
    "IBAN": "GB00 TEST 0000 0000 0000 00",
    "IP_ADDRESS": "192.0.2.1",
    "US_SSN": "000-00-0000",
}
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_\d+>")


def natural(text: str) -> str:
    """``text`` with every redaction placeholder replaced by a surrogate value (what the classifiers read)."""
    return PLACEHOLDER.sub(lambda m: SURROGATES.get(m.group(1), m.group(1).lower().replace("_", " ")), text)


class ClassifierScanner:
    def __init__(self, config: ClassifierConfig, context: BuildContext) -> None:
        if context.scorer is None:
            raise ValueError("classifier checks need the shared classifier scorer")
        self.scorer = context.scorer
        self.head = context.scorer.head(config.classifier, config.threshold)
        self.admitted = context.direction == "output"  # the request was let in when its input was checked

    async def scan(self, texts: Sequence[str]) -> list[ScanResult]:
        [result] = await self.scorer.score([natural(text) for text in texts], [self.head], admitted=self.admitted)
        return [ScanResult(score=s, fired=f, threshold=result.threshold) for s, f in zip(result.scores, result.flagged)]


def build(config: ClassifierConfig, context: BuildContext) -> ClassifierScanner:
    return ClassifierScanner(config, context)


KIND = CheckKind(
    "classifier", ClassifierConfig, build, actions=frozenset({"block", "flag"}), reads="normalised",
    summary="a safety classifier's violation probability against its threshold",
)
