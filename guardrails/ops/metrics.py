"""Prometheus metrics on ``prometheus_client``, in a registry owned by one app (no process-global registry).

Several worker processes (``shieldkit serve --workers N``, or gunicorn and the like) each count what they serve.
With ``PROMETHEUS_MULTIPROC_DIR`` set (``serve`` sets it for more than one worker), ``prometheus_client``'s
multiprocess mode keeps every process's values in files in that folder, and :meth:`Metrics.render` sums them with
its ``MultiProcessCollector``: a scrape of any worker shows the totals of all. Counters and histograms add up across
workers (and keep what stopped workers counted); the one gauge, ``shieldkit_ready``, is ``liveall``: one series
per live worker (label ``pid``). :meth:`Metrics.close` drops this process's live-gauge file when it stops. The
folder must exist and be emptied before the workers start (``serve`` does both).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shieldkit.errors import ConfigError
from shieldkit.guardrails.pipeline.engine import CheckOutcome, Verdict

FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    """The folder of ``prometheus_client``'s multiprocess mode, if this process runs in it."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


@contextmanager
def metrics_folder() -> Iterator[Path]:
    """For starting several workers: ``PROMETHEUS_MULTIPROC_DIR`` emptied of earlier runs' files (created if
    missing), or, when it is not set, set to a fresh temporary folder that is removed afterwards."""
    given = multiprocess_dir()
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        for stale in given.glob("*.db"):
            stale.unlink()
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="shieldkit-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir()
        if self.multiprocess is not None and not self.multiprocess.is_dir():
            raise ConfigError(f"{MULTIPROC_ENV}={self.multiprocess} is not a folder: create it (empty) before the "
                              "workers start, or unset it for a single process")
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("shieldkit_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=r)
        self.request_latency = Histogram("shieldkit_request_latency_seconds", "Request latency, to the last byte",
                                         ["endpoint"], buckets=SLOW_BUCKETS, registry=r)
        self.decisions = Counter("shieldkit_decisions", "Guard decisions", ["direction", "decision"], registry=r)
        self.check_results = Counter("shieldkit_check_results", "Check results by check (outcome: pass, fired, error)",
                                     ["check", "direction", "outcome"], registry=r)
        self.check_latency = Histogram("shieldkit_check_latency_seconds", "Time per check run", ["check", "direction"],
                                       buckets=FAST_BUCKETS, registry=r)
        self.upstream_errors = Counter("shieldkit_upstream_errors", "Upstream failures by HTTP status given to clients",
                                       ["status"], registry=r)
        self.stream_first_release = Histogram("shieldkit_stream_first_release_seconds",
                                              "Streaming: request start to the first checked text sent",
                                              buckets=SLOW_BUCKETS, registry=r)
        self.classifier_batch = Histogram("shieldkit_classifier_batch_texts", "Texts per classifier bank call",
                                          buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.classifier_cache = Counter("shieldkit_classifier_cache", "Score cache lookups per distinct text (result: "
                                        "hit, miss)", ["result"], registry=r)
        self.rate_limit_errors = Counter("shieldkit_rate_limit_storage_errors", "Failed rate-limit storage calls "
                                         "(handling: refused = 503, fail closed; allowed = let through, fail open)",
                                         ["handling"], registry=r)
        self.ready = Gauge("shieldkit_ready", "1 once models are loaded and the proxy serves (with several workers: "
                           "one series per live worker, label pid)", multiprocess_mode="liveall", registry=r)

    def check_done(self, direction: str, outcome: CheckOutcome) -> None:
        self.check_results.labels(outcome.name, direction, outcome.outcome).inc()
        self.check_latency.labels(outcome.name, direction).observe(outcome.latency_ms / 1000)

    def scored_batch(self, texts: int) -> None:
        self.classifier_batch.observe(texts)

    def cache_lookups(self, hits: int, misses: int) -> None:
        if hits:
            self.classifier_cache.labels("hit").inc(hits)
        if misses:
            self.classifier_cache.labels("miss").inc(misses)

    def decided(self, verdict: Verdict) -> None:
        self.decisions.labels(verdict.direction, verdict.decision).inc()

    def rate_limit_storage_failed(self, allowed: bool) -> None:
        self.rate_limit_errors.labels("allowed" if allowed else "refused").inc()

    def render(self) -> bytes:
        """The text exposition format: this app's registry, or in multiprocess mode the sum of every process."""
        if self.multiprocess is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess))
        return generate_latest(registry)

    def close(self) -> None:
        """In multiprocess mode: this process's live gauges leave the sum (its counters stay counted)."""
        if self.multiprocess is not None:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(os.getpid(), str(self.multiprocess))
