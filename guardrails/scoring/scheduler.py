"""Fair micro-batching of scoring jobs, with admission control.

A job is one ``submit(texts)`` call (a classifier check of one request, or one ``/v1/moderations`` call). Jobs wait
in a ring; each batch takes texts round-robin, one text per job in turn, at most ``per_job`` texts from one job and
``max_batch`` distinct texts in all (a text that several jobs wait for is scored once, for all of them). So a big
job is split over several batches instead of holding the worker for all of its texts, and a single-text check
queued behind a 16-text moderation call is in the very next batch, which is small: with ``per_job=1`` a check
waits for at most one text of another job's in the batch being scored, and one more in its own. Under many jobs,
batches fill up to ``max_batch``. Batches run one at a time (``run_batch`` hands them to a worker thread).

The queue is bounded by what a new job would wait for: the texts scored before its last one, in round-robin
order (its own texts, and from each waiting job as many as that job gets in the rounds the new one needs). A job
is refused with :class:`Overloaded` (the proxy answers 429 with ``Retry-After``) when those would pass
``max_queued``, or their estimated time (times the measured time per text) would pass ``max_wait`` seconds, so load
turns into quick 429s instead of check timeouts. A single check behind one 256-text moderation call waits for
about one of its texts, so it is let in; behind 128 other single checks it is not. A job alone in an empty queue
is always admitted, however big, and texts another job already waits for cost no room (the seven classifier
checks of one request ask for the same texts). ``admitted`` jobs (output checks of requests that were
let in) may use twice the bound, so an answer already generated is rarely lost to a full queue.

The batch runner may fail a batch with ``Overloaded`` or ``CheckUnavailable`` (the scorer service answering 429,
or unreachable): its jobs get that exception as it is, so a remote queue-full is still a 429 and an outage still a
clean check error. When the service cannot be reached at all (``ServiceDown``: refused, timed out), every waiting
job fails with it at once, and new jobs fail at once for ``down_s`` seconds, instead of each waiting its turn for
a batch that times out too (with a 20 s read timeout, the tenth batch in line would have waited minutes). With ``tell_admitted`` the runner is called as ``run_batch(texts, admitted)``, ``admitted``
saying whether any job in the batch was admitted (the scorer-service client forwards it, so the service gives
those texts the same extra room).

Built on asyncio primitives only (a future per job, a drainer task started on demand, ``collections.deque``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from shieldkit.guardrails.checks.base import CheckUnavailable, Overloaded, ServiceDown

log = logging.getLogger("shieldkit.guardrails")
Row = Mapping[str, float]  # one text's score under every head
RunBatch = Callable[..., Awaitable[list[Row]]]  # (texts) -> one row per text; (texts, admitted) with tell_admitted


@dataclass(eq=False)
class _Job:
    texts: list[str]  # distinct
    future: asyncio.Future = field(repr=False)
    admitted: bool = False
    turns: deque[str] = field(init=False)  # the job's texts in the order its turns take them
    taken: set[str] = field(default_factory=set)  # texts in a batch already (taken on this job's turn or another's)
    rows: dict[str, Row] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.turns = deque(self.texts)

    @property
    def waiting(self) -> bool:
        return len(self.taken) < len(self.texts)

    def next_text(self) -> str | None:
        while self.turns:
            text = self.turns.popleft()
            if text not in self.taken:
                return text
        return None


@dataclass
class SchedulerStats:
    batches: int = 0
    texts: int = 0  # distinct texts scored
    refused: int = 0  # jobs refused as overloaded


class FairScheduler:
    def __init__(self, run_batch: RunBatch, *, window_s: float = 0.003, max_batch: int = 8, per_job: int = 1,
                 max_queued: int = 128, max_wait_s: float = 10.0, on_batch: Callable[[int], None] | None = None,
                 tell_admitted: bool = False, down_s: float = 1.0) -> None:
        if min(max_batch, per_job, max_queued) < 1:
            raise ValueError("max_batch, per_job and max_queued must be at least 1")
        self.run_batch = run_batch
        self.tell_admitted = tell_admitted
        self.window_s = window_s
        self.max_batch = max_batch
        self.per_job = per_job
        self.max_queued = max_queued
        self.max_wait_s = max_wait_s
        self.on_batch = on_batch
        self.down_s = down_s
        self._down: tuple[float, ServiceDown] | None = None  # (until, why): the service was unreachable
        self.stats = SchedulerStats()
        self.seconds_per_text = 0.0  # moving average of measured batch time per text; 0 until measured
        self._ring: deque[_Job] = deque()  # jobs with texts not yet in a batch, in round-robin order
        self._wanted: dict[str, list[_Job]] = {}  # text not yet in a batch -> the jobs waiting for it
        self._drainer: asyncio.Task | None = None
        self._closed = False

    @property
    def queued(self) -> int:
        """Distinct texts waiting to be taken into a batch."""
        return len(self._wanted)

    async def submit(self, texts: Sequence[str], *, admitted: bool = False) -> list[Row]:
        """One row per text (in order), once every text has been scored; raises :class:`Overloaded` at once when
        the job is not admitted. A text that another job is waiting for already costs no room."""
        if self._closed:
            raise CheckUnavailable("the classifier scorer is shut down")
        if self._down is not None:
            until, why = self._down
            if time.monotonic() < until:
                raise ServiceDown(f"{why} (not retried for {until - time.monotonic():.1f} s)")
            self._down = None
        distinct = list(dict.fromkeys(texts))
        if not distinct:
            return []
        self._admit(sum(text not in self._wanted for text in distinct), admitted)  # raises Overloaded
        loop = asyncio.get_running_loop()
        job = _Job(distinct, loop.create_future(), admitted)
        job.future.add_done_callback(lambda future: self._forget(job) if future.cancelled() else None)
        for text in distinct:
            self._wanted.setdefault(text, []).append(job)
        self._ring.append(job)
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        rows = await job.future
        return [rows[text] for text in texts]

    def _admit(self, new: int, admitted: bool) -> None:
        if not self._wanted or new == 0:
            return
        rounds = math.ceil(new / self.per_job)  # turns the new job needs; each waiting job gets as many
        ahead = sum(min(len(job.texts) - len(job.taken), rounds * self.per_job) for job in self._ring)
        scale = 2 if admitted else 1
        wait = (ahead + new) * self.seconds_per_text
        if ahead + new <= self.max_queued * scale and wait <= self.max_wait_s * scale:
            return
        self.stats.refused += 1
        drain = max(wait, 1.0)
        raise Overloaded(f"the classifier queue is full ({ahead} texts would be scored before these {new}, about "
                         f"{drain:.0f} s of work; {len(self._wanted)} texts waiting); retry later",
                         retry_after=math.ceil(drain))

    def take_batch(self) -> dict[str, list[_Job]]:
        """The next batch, {text: the jobs waiting for it}: one text per job in turn, round-robin over the ring."""
        batch: dict[str, list[_Job]] = {}
        turns: dict[_Job, int] = {}
        next_round: list[_Job] = []  # jobs that took their share of this batch
        while self._ring and len(batch) < self.max_batch:
            job = self._ring.popleft()
            text = job.next_text()
            if text is None:
                continue
            batch[text] = self._wanted.pop(text)
            for rider in batch[text]:
                rider.taken.add(text)
            turns[job] = turns.get(job, 0) + 1
            if job.waiting:
                (next_round if turns[job] >= self.per_job else self._ring).append(job)
        self._ring.extend(next_round)
        return batch

    def _forget(self, job: _Job) -> None:
        """Take a job that will get no results (cancelled by its caller, failed) out of the queue."""
        if job in self._ring:
            self._ring.remove(job)
        for text in job.texts:
            waiting = self._wanted.get(text)
            if waiting is not None and job in waiting:
                waiting.remove(job)
                if not waiting:
                    del self._wanted[text]

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(self.window_s)
            while self._ring:
                batch = self.take_batch()
                if batch:
                    await self._run(batch)
        finally:
            self._drainer = None

    async def _run(self, batch: dict[str, list[_Job]]) -> None:
        texts = list(batch)
        jobs = {job for waiting in batch.values() for job in waiting}
        started = time.perf_counter()
        try:
            if self.tell_admitted:
                rows = await self.run_batch(texts, any(job.admitted for job in jobs))
            else:
                rows = await self.run_batch(texts)
            if len(rows) != len(texts):
                raise RuntimeError(f"scored {len(rows)} texts of a batch of {len(texts)}")
        except asyncio.CancelledError:  # shutdown
            self._fail(jobs, CheckUnavailable("the classifier scorer is shut down"))
            raise
        except ServiceDown as exc:  # nothing waiting can be scored either: fail it all now, and new jobs for down_s
            log.warning("a batch of %d texts was not scored, nor the %d texts waiting: %s", len(texts),
                        len(self._wanted), exc)
            self._down = (time.monotonic() + self.down_s, exc)
            self._fail(jobs | set(self._ring), exc)
            return
        except (Overloaded, CheckUnavailable) as exc:  # the scorer service's 429, or a bad answer: as they are
            log.warning("a batch of %d texts was not scored: %s", len(texts), exc)
            self._fail(jobs, exc)
            return
        except Exception as exc:  # every job in the batch fails; its check applies on_error (block by default)
            log.exception("classifier scoring failed on a batch of %d texts", len(texts))
            self._fail(jobs, RuntimeError(f"classifier scoring failed: {exc}"))
            return
        per_text = (time.perf_counter() - started) / len(texts)
        self.seconds_per_text = per_text if not self.stats.batches else 0.8 * self.seconds_per_text + 0.2 * per_text
        self.stats.batches += 1
        self.stats.texts += len(texts)
        for text, row in zip(texts, rows):
            for job in batch[text]:
                job.rows[text] = row
                if not job.future.done() and len(job.rows) == len(job.texts):
                    job.future.set_result(job.rows)
        if self.on_batch is not None:  # after the results: a failing observer must not leave the jobs waiting
            try:
                self.on_batch(len(texts))
            except Exception:
                log.exception("the batch observer failed (the batch's results were delivered)")

    def _fail(self, jobs: set[_Job], error: Exception) -> None:
        for job in jobs:
            self._forget(job)
            if not job.future.done():
                job.future.set_exception(error)

    async def aclose(self) -> None:
        """Refuse new jobs and fail the waiting ones (shutdown)."""
        self._closed = True
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
        self._fail(set(self._ring), CheckUnavailable("the classifier scorer is shut down"))
