"""``kind: pii``: emails, phone numbers, card numbers (Luhn), IBANs (mod 97), IP addresses, US SSNs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shieldkit.guardrails.checks.base import BuildContext, CheckConfig, CheckKind, ScanResult
from shieldkit.guardrails.checks.holds import Hold
from shieldkit.guardrails.checks.pii_recognisers import ENTITIES, find_pii, pii_hold
from shieldkit.guardrails.policy.fields import FieldError


@dataclass(frozen=True, kw_only=True)
class PiiConfig(CheckConfig):
    entities: tuple[str, ...] = ENTITIES  # which kinds of PII to look for

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.entities:
            raise FieldError("entities", f"must list at least one of {', '.join(ENTITIES)}")
        for index, entity in enumerate(self.entities):
            if entity not in ENTITIES:
                raise FieldError(("entities", index), f"unknown entity {entity!r}; known: {', '.join(ENTITIES)}")


class PiiScanner:
    def __init__(self, entities: tuple[str, ...]) -> None:
        self.entities = entities

    async def scan(self, texts: Sequence[str]) -> list[ScanResult]:
        results = []
        for text in texts:
            findings = tuple(find_pii(text, self.entities))
            results.append(ScanResult(score=1.0 if findings else 0.0, fired=bool(findings), findings=findings))
        return results

    def hold(self, text: str) -> Hold:
        return pii_hold(text, self.entities)


def build(config: PiiConfig, context: BuildContext) -> PiiScanner:
    return PiiScanner(config.entities)


KIND = CheckKind("pii", PiiConfig, build, summary="finds PII (" + ", ".join(ENTITIES) + ")")
