"""Micro-batching of classifier scoring across checks and concurrent requests.

Every classifier check submits ``(texts, ref)``; submissions are collected for ``window_ms`` (and for as long as the
worker is busy with the previous batch) and scored with one ``bank.score(unique_texts, policies)`` call in a single
worker thread, off the event loop. The checks of one request are submitted together (``asyncio.gather``), so they
always land in the same bank call; under load, concurrent requests share calls too.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shieldkit.guardrails.classifier_api import ClassifiersUnavailable

if TYPE_CHECKING:
    from shieldkit.classifiers.base import ClassifierBank

log = logging.getLogger("shieldkit.guardrails")


@dataclass
class _Job:
    texts: list[str]
    ref: str
    future: asyncio.Future = field(repr=False)


@dataclass
class BatchStats:
    calls: int = 0  # bank.score calls
    texts: int = 0  # unique texts scored
    jobs: int = 0  # check submissions served


class MicroBatcher:
    def __init__(self, window_ms: float = 3.0, max_texts: int = 32, on_batch=None) -> None:
        self.window = window_ms / 1000
        self.on_batch = on_batch  # called with the number of texts of each bank call (metrics)
        self.max_texts = max_texts
        self.stats = BatchStats()
        self._bank: ClassifierBank | None = None
        self._names: dict[str, str] = {}  # ref -> policy name in the bank
        self._thresholds: dict[str, float] = {}
        self._unavailable: dict[str, str] = {}  # ref -> why it cannot be scored
        self._pending: list[_Job] = []
        self._drainer: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    def attach(self, bank: ClassifierBank | None, names: Mapping[str, str], thresholds: Mapping[str, float],
               unavailable: Mapping[str, str]) -> None:
        """Make the loaded bank available (called once the models have loaded)."""
        self._bank = bank
        self._names = dict(names)
        self._thresholds = dict(thresholds)
        self._unavailable = dict(unavailable)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shieldkit-classify")

    @property
    def available(self) -> dict[str, str]:
        """{ref: policy name} of the classifiers that can be scored."""
        return dict(self._names)

    @property
    def unavailable(self) -> dict[str, str]:
        """{ref: why it cannot be scored}."""
        return dict(self._unavailable)

    def threshold(self, ref: str) -> float:
        return self._thresholds[ref]

    async def score(self, texts: Sequence[str], ref: str) -> tuple[list[float], float]:
        """Violation probabilities of ``texts`` under classifier ``ref``, and its calibrated threshold."""
        if ref in self._unavailable:
            raise ClassifiersUnavailable(self._unavailable[ref])
        if self._bank is None or self._executor is None or ref not in self._names:
            raise ClassifiersUnavailable(f"classifier {ref!r} is not loaded")
        if not texts:
            return [], self._thresholds[ref]
        loop = asyncio.get_running_loop()
        job = _Job(list(texts), ref, loop.create_future())
        self._pending.append(job)
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        return await job.future, self._thresholds[ref]

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(self.window)
            while self._pending:
                batch = self._take_batch()
                if batch:
                    await self._run(batch)
        finally:
            self._drainer = None

    def _take_batch(self) -> list[_Job]:
        """Whole jobs, in arrival order, up to ``max_texts`` unique texts (at least one job)."""
        batch: list[_Job] = []
        unique: set[str] = set()
        while self._pending:
            job = self._pending[0]
            if job.future.done():  # its caller went away
                self._pending.pop(0)
                continue
            grown = unique | set(job.texts)
            if batch and len(grown) > self.max_texts:
                break
            batch.append(self._pending.pop(0))
            unique = grown
        return batch

    async def _run(self, batch: list[_Job]) -> None:
        texts = list(dict.fromkeys(t for job in batch for t in job.texts))
        policies = sorted({self._names[job.ref] for job in batch})
        loop = asyncio.get_running_loop()
        try:
            scores = await loop.run_in_executor(self._executor, self._score, texts, policies)
        except Exception as exc:  # reported to every waiting check, which applies its on_error
            log.exception("classifier bank failed on a batch of %d texts", len(texts))
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(RuntimeError(f"classifier scoring failed: {exc}"))
            return
        index = {text: i for i, text in enumerate(texts)}
        self.stats.calls += 1
        self.stats.texts += len(texts)
        self.stats.jobs += len(batch)
        if self.on_batch is not None:
            self.on_batch(len(texts))
        for job in batch:
            if not job.future.done():
                column = scores[self._names[job.ref]]
                job.future.set_result([column[index[t]] for t in job.texts])

    def _score(self, texts: list[str], policies: list[str]) -> dict[str, list[float]]:
        bank = self._bank
        if bank is None:
            raise ClassifiersUnavailable("the classifier bank is not loaded")
        raw = bank.score(texts, policies)
        checked: dict[str, list[float]] = {}
        for policy in policies:
            values = raw.get(policy) if isinstance(raw, Mapping) else None
            if values is None or len(values) != len(texts):
                raise ValueError(f"the bank returned no scores or the wrong number of scores for {policy!r}")
            floats = [float(v) for v in values]
            if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in floats):
                raise ValueError(f"the bank returned scores outside [0, 1] for {policy!r}")
            checked[policy] = floats
        return checked

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
