"""Runs the ordered checks of one policy direction over a request's texts and decides.

Checks read the normalised view of the texts (invisible characters dropped, look-alike letters folded, messages
of one role joined, ...; see guardrails/pipeline/reading.py), the model gets the originals. Two phases. First the
``redact`` checks, in policy order, each on the text the previous one left (as in llm-guard): their matches --
found in the original or in the view, and mapped back to the original -- become typed placeholders. Then every
other check runs on that redacted text -- what the model will see -- all at once, so the audit log gets every
score and all classifier checks share one bank call. Last, the redact checks look again at the final text: a match
still there (redaction could not remove it) blocks the request, so nothing a redact check finds reaches the model.
The decision, in policy order: the first check that fired with ``action: block``, that failed with
``on_error: block``, or that left a match unredacted, blocks; fired ``flag`` checks are only recorded. A check that
is not admitted (``Overloaded``: the classifier queue is full) refuses the whole request instead: it is raised once
every check has settled, and the app answers 429.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from shieldkit.guardrails.checks.base import CheckConfig, CheckUnavailable, Finding, Overloaded, Reads, Scanner
from shieldkit.guardrails.pipeline.reading import Reading
from shieldkit.guardrails.pipeline.vault import Vault

log = logging.getLogger("shieldkit.guardrails")
Direction = Literal["input", "output"]


@dataclass(frozen=True)
class Check:
    config: CheckConfig
    scanner: Scanner
    reads: Reads = "both"  # the kind's: normalised views, original texts, or both


@dataclass
class CheckOutcome:
    name: str
    kind: str
    action: str
    on_error: str
    score: float | None  # the highest score over the texts; None when the check failed
    threshold: float | None
    fired: bool
    error: str | None
    latency_ms: float
    findings: list[tuple[Finding, ...]] = field(default_factory=list, repr=False)  # per text
    residual: bool = False  # a redact check still matched the redacted text: blocks whatever the action

    @property
    def outcome(self) -> str:
        return "error" if self.error else ("fired" if self.fired or self.residual else "pass")

    @property
    def blocks(self) -> bool:
        return (self.fired and self.action == "block") or (self.error is not None and self.on_error == "block") \
            or self.residual

    def to_dict(self) -> dict:
        return {
            "name": self.name, "kind": self.kind, "action": self.action, "outcome": self.outcome,
            "score": None if self.score is None else round(self.score, 4), "threshold": self.threshold,
            "latency_ms": round(self.latency_ms, 3), "error": self.error,
            "findings": [{"type": f.label, "start": f.start, "end": f.end, "text_index": i}
                         for i, found in enumerate(self.findings) for f in found],
            **({"residual": True} if self.residual else {}),
        }


@dataclass
class Verdict:
    direction: Direction
    texts: list[str]  # the texts after redaction
    outcomes: list[CheckOutcome]
    latency_ms: float
    changed: bool = False  # some text was redacted

    @property
    def blocked_by(self) -> CheckOutcome | None:
        return next((o for o in self.outcomes if o.blocks), None)

    @property
    def decision(self) -> Literal["block", "redact", "allow"]:
        return "block" if self.blocked_by else ("redact" if self.changed else "allow")

    @property
    def flagged(self) -> list[str]:
        return [o.name for o in self.outcomes if o.fired and o.action == "flag"]


class Observer(Protocol):
    def check_done(self, direction: Direction, outcome: CheckOutcome) -> None: ...


class Guard:
    """The ordered checks of one policy for one direction."""

    def __init__(self, direction: Direction, checks: Sequence[Check], *, timeout_s: float = 30.0,
                 observer: Observer | None = None) -> None:
        self.direction = direction
        self.checks = tuple(checks)
        self.timeout_s = timeout_s
        self.observer = observer

    async def run(self, texts: Sequence[str], vault: Vault, *, skip: Sequence[int] | None = None,
                  roles: Sequence[str] | None = None) -> Verdict:
        """Check ``texts`` (``roles[i]``: the chat role of text i, for checks limited to some roles and for joining
        consecutive messages of one role). ``skip[i]`` leading characters of text i were checked before (stream
        context): matches that end there are ignored, and a match that starts there is redacted only from
        ``skip[i]`` on."""
        started = time.perf_counter()
        skip = list(skip) if skip is not None else [0] * len(texts)
        current, changed = list(texts), False
        reading = Reading(current, roles)
        outcomes: dict[int, CheckOutcome] = {}
        redacting = [i for i, check in enumerate(self.checks) if check.config.action == "redact"]
        for index in redacting:
            outcomes[index] = outcome = await self._run_one(self.checks[index], reading, skip)
            if outcome.fired:
                config = self.checks[index].config
                current = [_redact(text, found, config, roles[i] if roles is not None else None, vault)
                           for i, (text, found) in enumerate(zip(current, outcome.findings))]
                changed = True
                reading = Reading(current, roles)
        others = [i for i in range(len(self.checks)) if i not in outcomes]
        results = await asyncio.gather(*(self._run_one(self.checks[i], reading, skip) for i in others),
                                       return_exceptions=True)
        refused = next((r for r in results if isinstance(r, BaseException)), None)
        if refused is not None:  # Overloaded (the only exception _run_one lets out), once every check has settled
            raise refused
        outcomes.update(zip(others, results))
        if changed:
            await self._recheck_redactions(redacting, outcomes, reading, skip)
        ordered = [outcomes[i] for i in range(len(self.checks))]
        if self.observer is not None:
            for outcome in ordered:
                self.observer.check_done(self.direction, outcome)
        return Verdict(self.direction, current, ordered, (time.perf_counter() - started) * 1000, changed)

    async def _recheck_redactions(self, redacting: list[int], outcomes: dict[int, CheckOutcome], reading: Reading,
                                  skip: list[int]) -> None:
        """Scan the final text with every redact check again: what one still finds was not redacted."""
        for index in redacting:
            if outcomes[index].error is not None:
                continue
            again = await self._run_one(self.checks[index], reading, skip)
            if again.error is not None:
                outcomes[index] = replace(outcomes[index], error=again.error, score=None)
            elif again.fired:
                log.warning("redact check '%s' still matches the redacted text; blocking", again.name)
                outcomes[index] = replace(outcomes[index], residual=True)

    async def _run_one(self, check: Check, reading: Reading, skip: list[int]) -> CheckOutcome:
        config = check.config
        started = time.perf_counter()
        error, scanned = None, []
        units = reading.units(check.reads, config.roles)
        try:
            scanned = await _with_timeout(check.scanner.scan([u.text for u in units]), self.timeout_s) if units else []
            if len(scanned) != len(units):
                raise RuntimeError(f"returned {len(scanned)} results for {len(units)} texts")
        except Overloaded:
            raise
        except asyncio.TimeoutError:
            error = f"timed out after {self.timeout_s:g} s"
            log.warning("check '%s' timed out (%s)", config.name, config.on_error)
        except CheckUnavailable as exc:  # announced loudly at start-up; per request it is only recorded
            error = str(exc)
        except Exception as exc:  # a broken check never lets text through by accident: on_error decides
            error = str(exc) or type(exc).__name__
            log.warning("check '%s' failed (%s): %s", config.name, config.on_error, error,
                        exc_info=not isinstance(exc, (RuntimeError, LookupError)))
        latency = (time.perf_counter() - started) * 1000
        if error is not None:
            return CheckOutcome(config.name, config.kind, config.action, config.on_error, None, None, False, error,
                                latency, [() for _ in reading.texts])
        findings: list[set[Finding]] = [set() for _ in reading.texts]
        score, fired, threshold = 0.0, False, None
        for unit, result in zip(units, scanned):
            located = [(message, Finding(max(start, skip[message]), end, f.label)) for f in result.findings
                       for message, start, end in unit.locate(f.start, f.end) if end > skip[message]]
            if result.findings and any(skip[m] for m in unit.messages):  # only matches reaching into new text count
                unit_fired, unit_score = bool(located), 1.0 if located else 0.0
            else:
                unit_fired, unit_score = result.fired, result.score
            for message, finding in located:
                findings[message].add(finding)
            score, fired = max(score, unit_score), fired or unit_fired
            threshold = result.threshold if threshold is None else threshold
        return CheckOutcome(
            config.name, config.kind, config.action, config.on_error, score, threshold, fired, None, latency,
            [tuple(sorted(found, key=lambda f: (f.start, f.end))) for found in findings],
        )


async def _with_timeout(awaitable, seconds: float):
    """``asyncio.timeout`` where available (3.11+: no extra task per check), else ``wait_for``."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


def _redact(text: str, findings: tuple[Finding, ...], config: CheckConfig, role: str | None, vault: Vault) -> str:
    """Overlapping matches (of the original and of the view) are redacted as their union, so no part is left; they
    are restorable if the check restores values from messages of ``role``."""
    restore = config.restore and role in config.restore_roles
    merged: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.start, f.end)):
        if merged and finding.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = Finding(last.start, max(last.end, finding.end), last.label)
        else:
            merged.append(finding)
    return vault.redact(text, [(finding, restore) for finding in merged], role=role)
