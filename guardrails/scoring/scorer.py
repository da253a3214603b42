"""The scorer: what classifier checks and ``/v1/moderations`` ask for classifier scores, and the one place that
chooses a threshold.

``ClassifierScorer`` is built (with its load plan) before the guards, loads its bank when the app starts
(``load``), and answers ``score(texts, heads)``: scores found in the score cache are answered at once, the rest go
through the fair scheduler (``scheduler.py``) to the bank in a worker thread. The cache is a bounded LRU
(``cachetools.LRUCache``) of every head's score per text, keyed by the loaded bank's identity and the sha256 of the
exact text. Scores do not depend on which other texts share a batch (beyond float rounding), so a cached score is
the score. (With the opt-in ``SHIELDKIT_CLASSIFIER_PRECISION=int8`` they depend on it a little: int8 activations
get one scale per batch. The identity names the precision, so scores of different precisions never mix in the
cache.)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cachetools import LRUCache

from shieldkit.errors import ConfigError
from shieldkit.guardrails.checks.base import CheckUnavailable
from shieldkit.guardrails.scoring import bank as link
from shieldkit.guardrails.scoring.protocol import Head, HeadScores
from shieldkit.guardrails.scoring.scheduler import FairScheduler, Row

if TYPE_CHECKING:
    from shieldkit.guardrails.policy import LoadedPolicies

log = logging.getLogger("shieldkit.guardrails")


class ScoringObserver(Protocol):
    def scored_batch(self, texts: int) -> None: ...

    def cache_lookups(self, hits: int, misses: int) -> None: ...


@dataclass(frozen=True)
class ScoringOptions:
    window_ms: float = 3.0
    max_batch: int = 8
    per_request: int = 1
    max_queued: int = 128
    max_wait_s: float = 10.0
    cache_size: int = 4096


class ClassifierScorer:
    def __init__(self, uses: Sequence[link.ClassifierUse], base_dir: Path, *, source: str = "<policy>",
                 options: ScoringOptions = ScoringOptions(), loader: link.BankLoader | None = None,
                 observer: ScoringObserver | None = None) -> None:
        self.plan = link.LoadPlan.from_uses(uses, base_dir, source)
        self._uses = list(uses)
        self._loader = loader
        self._observer = observer
        self._loaded: link.LoadedBank | None = None
        self._unavailable = dict(self.plan.unavailable)
        self._cache: LRUCache | None = LRUCache(options.cache_size) if options.cache_size else None
        self._executor: ThreadPoolExecutor | None = None
        self.scheduler = FairScheduler(
            self._run_batch, window_s=options.window_ms / 1000, max_batch=options.max_batch,
            per_job=options.per_request, max_queued=options.max_queued, max_wait_s=options.max_wait_s,
            on_batch=observer.scored_batch if observer is not None else None)

    @classmethod
    def for_policies(cls, policies: LoadedPolicies, options: ScoringOptions = ScoringOptions(), *,
                     loader: link.BankLoader | None = None, observer: ScoringObserver | None = None) -> ClassifierScorer:
        """The scorer of every classifier check in a policy file."""
        return cls(link.classifier_uses(policies), policies.base_dir, source=policies.source, options=options, loader=loader, observer=observer)

    @property
    def needs_model(self) -> bool:
        return bool(self.plan.load)

    # --- loading (in the app's start-up thread) -----------------------------------------------------------------

    def load(self, runtime) -> None:
        """Load the planned classifiers on ``runtime``. A failure stops the start if a check blocks on one of
        them; otherwise they become unavailable (their checks report errors) and the proxy starts loudly."""
        if not self.plan.load:
            return
        try:
            self._loaded = link.load(self.plan, runtime, self._loader)
        except Exception as exc:
            reason = f"loading classifiers {', '.join(self.plan.load.values())} failed: {exc}"
            blocking = [self.plan.load[key] for key in self.plan.load if key in self.plan.blocking]
            if blocking:
                raise ConfigError(f"{reason} (checks with on_error: block use {', '.join(blocking)})") from exc
            log.error("UNAVAILABLE classifiers (on_error: allow, texts pass them unchecked): %s", reason)
            self._unavailable.update({key: reason for key in self.plan.load})
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shieldkit-classify")

    @property
    def loaded(self) -> link.LoadedBank | None:
        return self._loaded

    @property
    def available(self) -> dict[str, str]:
        """{reference: head name} of the loaded classifiers (a default's name, or its folder)."""
        if self._loaded is None:
            return {}
        return {self.plan.load[key]: name for key, name in self._loaded.names.items()}

    @property
    def unavailable(self) -> dict[str, str]:
        """{reference: why it cannot be scored}."""
        return {self.plan.load.get(key, key): why for key, why in self._unavailable.items()}  # unresolved: key == ref

    # --- the protocol --------------------------------------------------------------------------------------------

    def head(self, ref: str, threshold: float | None = None) -> Head:
        if ref not in self.plan.keys:
            raise ConfigError(f"classifier {ref!r} is not in the load plan of this policy file")
        return Head(self.plan.keys[ref], threshold)

    def heads_for(self, policy: str) -> list[Head]:
        """The heads of ``policy``'s classifier checks that loaded (each once, with its first check's threshold);
        every loaded head when it has none (what ``/v1/moderations`` answers with)."""
        loaded = self._loaded.names if self._loaded is not None else {}
        chosen: dict[str, Head] = {}
        for use in self._uses:
            key = self.plan.keys[use.ref]
            if use.policy == policy and key in loaded:
                chosen.setdefault(key, Head(key, use.threshold))
        return list(chosen.values()) or [Head(key) for key in loaded]

    def unavailable_reason(self, head: Head) -> str | None:
        """Why ``head`` cannot be scored, or None when it can."""
        if head.key in self._unavailable:
            return self._unavailable[head.key]
        if self._loaded is None or head.key not in self._loaded.names:
            return f"classifier {head.key!r} is not loaded"
        return None

    async def score(self, texts: Sequence[str], heads: Sequence[Head], *, admitted: bool = False) -> list[HeadScores]:
        loaded = self._loaded
        for head in heads:
            reason = self.unavailable_reason(head)
            if reason is not None:
                raise CheckUnavailable(reason)
        rows = await self._rows(list(texts), admitted) if texts else []
        results = []
        for head in heads:
            name = loaded.names[head.key]
            cut = loaded.thresholds[head.key] if head.threshold is None else head.threshold
            results.append(HeadScores(name, [row[name] for row in rows], cut))
        return results

    # --- cache and batches ---------------------------------------------------------------------------------------

    async def _rows(self, texts: list[str], admitted: bool) -> list[Row]:
        if self._cache is None:
            return await self.scheduler.submit(texts, admitted=admitted)
        keys = {text: self._cache_key(text) for text in texts}
        found = {text: self._cache.get(key) for text, key in keys.items()}
        missing = [text for text, row in found.items() if row is None]
        if self._observer is not None:
            self._observer.cache_lookups(len(found) - len(missing), len(missing))
        if missing:
            for text, row in zip(missing, await self.scheduler.submit(missing, admitted=admitted)):
                self._cache[keys[text]] = found[text] = row
        return [found[text] for text in texts]

    def _cache_key(self, text: str) -> tuple[str, str]:
        return self._loaded.identity, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    async def _run_batch(self, texts: list[str]) -> list[Row]:
        loaded, executor = self._loaded, self._executor
        if loaded is None or executor is None:
            raise CheckUnavailable("the classifiers are not loaded")
        return await asyncio.get_running_loop().run_in_executor(executor, loaded.score, texts)

    async def aclose(self) -> None:
        await self.scheduler.aclose()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
