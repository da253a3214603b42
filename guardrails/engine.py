"""Runs the ordered checks of one policy direction over a request's texts and decides.

Two phases. First the ``redact`` checks, in policy order, each on the text the previous one left (as in llm-guard):
their matches become typed placeholders. Then every other check runs on that redacted text -- what the model will
see -- all at once, so the audit log gets every score and all classifier checks share one bank call. The decision,
in policy order: the first check that fired with ``action: block``, or that failed with ``on_error: block``,
blocks; fired ``flag`` checks are only recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from shieldkit.guardrails.checks.base import CheckConfig, CheckUnavailable, Finding, ScanResult, Scanner
from shieldkit.guardrails.vault import Vault

log = logging.getLogger("shieldkit.guardrails")
Direction = Literal["input", "output"]


@dataclass(frozen=True)
class Check:
    config: CheckConfig
    scanner: Scanner


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
    restore: bool = False

    @property
    def outcome(self) -> str:
        return "error" if self.error else ("fired" if self.fired else "pass")

    @property
    def blocks(self) -> bool:
        return (self.fired and self.action == "block") or (self.error is not None and self.on_error == "block")

    def to_dict(self) -> dict:
        return {
            "name": self.name, "kind": self.kind, "action": self.action, "outcome": self.outcome,
            "score": None if self.score is None else round(self.score, 4), "threshold": self.threshold,
            "latency_ms": round(self.latency_ms, 3), "error": self.error,
            "findings": [{"type": f.label, "start": f.start, "end": f.end, "text_index": i}
                         for i, found in enumerate(self.findings) for f in found],
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
        """Check ``texts`` (``roles[i]``: the chat role of text i, for checks limited to some roles). ``skip[i]``
        leading characters of text i were checked before (stream context): matches that end there are ignored, and
        a match that starts there is redacted only from ``skip[i]`` on."""
        started = time.perf_counter()
        skip = list(skip) if skip is not None else [0] * len(texts)
        current, changed = list(texts), False
        outcomes: dict[int, CheckOutcome] = {}
        for index, check in enumerate(self.checks):
            if check.config.action == "redact":
                outcomes[index] = outcome = await self._run_one(check, current, skip, roles)
                if outcome.fired:
                    current = [_redact(text, found, check.config, roles[i] if roles is not None else None, vault)
                               for i, (text, found) in enumerate(zip(current, outcome.findings))]
                    changed = True
        others = [i for i in range(len(self.checks)) if i not in outcomes]
        results = await asyncio.gather(*(self._run_one(self.checks[i], current, skip, roles) for i in others))
        outcomes.update(zip(others, results))
        ordered = [outcomes[i] for i in range(len(self.checks))]
        if self.observer is not None:
            for outcome in ordered:
                self.observer.check_done(self.direction, outcome)
        return Verdict(self.direction, current, ordered, (time.perf_counter() - started) * 1000, changed)

    async def _run_one(self, check: Check, texts: Sequence[str], skip: list[int], roles: Sequence[str] | None) -> CheckOutcome:
        config = check.config
        started = time.perf_counter()
        error, results = None, []
        every_text = not config.roles or roles is None
        chosen = [i for i in range(len(texts)) if every_text or roles[i] in config.roles]
        try:
            scanned = await _with_timeout(check.scanner.scan([texts[i] for i in chosen]), self.timeout_s) if chosen else []
            if len(scanned) != len(chosen):
                raise RuntimeError(f"returned {len(scanned)} results for {len(chosen)} texts")
            results = [ScanResult(0.0, False)] * len(texts)
            for index, result in zip(chosen, scanned):
                results[index] = result
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
                                latency, [() for _ in texts], config.restore)
        kept = [_visible(result, s) for result, s in zip(results, skip)]
        fired = any(kept_result.fired for kept_result in kept)
        return CheckOutcome(
            config.name, config.kind, config.action, config.on_error,
            max((r.score for r in kept), default=0.0), next((r.threshold for r in kept if r.threshold is not None), None),
            fired, None, latency, [r.findings for r in kept], config.restore,
        )

async def _with_timeout(awaitable, seconds: float):
    """``asyncio.timeout`` where available (3.11+: no extra task per check), else ``wait_for``."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


def _redact(text: str, findings: tuple[Finding, ...], config: CheckConfig, role: str | None, vault: Vault) -> str:
    """Redact one text's findings; they are restorable if the check restores values from messages of ``role``."""
    restore = config.restore and role in config.restore_roles
    spans: list[tuple[Finding, bool]] = []
    for finding in sorted(findings, key=lambda f: f.start):
        if not spans or finding.start >= spans[-1][0].end:  # overlapping matches of one check: the first wins
            spans.append((finding, restore))
    return vault.redact(text, spans, role=role)


def _visible(result: ScanResult, skip: int) -> ScanResult:
    """Drop findings that lie wholly in already-checked context; clip ones that reach into the new text."""
    if not skip or not result.findings:
        return result
    kept = tuple(Finding(max(f.start, skip), f.end, f.label) for f in result.findings if f.end > skip)
    return ScanResult(score=1.0 if kept else 0.0, fired=bool(kept), findings=kept, threshold=result.threshold)
